import BrigCore
import BrigLinux
import BrigOCI
import FoundationEssentials
import Glibc

/// Reads and validates `<bundle>/config.json`, every error naming the path or field.
enum Bundle {
    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path == "/" ? path : String(path.reversed().drop(while: { $0 == "/" }).reversed()) }
        var buf = [CChar](repeating: 0, count: 4096)
        let cwd = String(cString: getcwd(&buf, buf.count))
        return path == "." || path.isEmpty ? cwd : cwd + "/" + path
    }

    static func load(_ bundleArg: String?) throws(RuntimeError) -> (bundle: String, spec: Spec) {
        let bundle = absolute(bundleArg ?? ".")
        guard Files.isDirectory(bundle) else {
            throw RuntimeError(.config, "bundle \(bundle): no such directory")
        }
        let bytes: [UInt8]
        do { bytes = try Files.read(bundle + "/config.json") } catch {
            throw RuntimeError(.config, "\(bundle)/config.json: cannot read: \(String(cString: strerror(error.errno)))")
        }
        do {
            let spec = try ConfigLoader.decode(Data(bytes))
            try Validation.validate(spec)
            return (bundle, spec)
        } catch {
            throw RuntimeError(.config, "\(bundle)/config.json: \(error)")
        }
    }
}
