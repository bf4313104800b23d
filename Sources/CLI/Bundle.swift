import BrigCore
import BrigLinux
import BrigOCI
import Glibc

/// Reads and validates `<bundle>/config.json`, every error naming the path or field.
enum Bundle {
    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") {
            if path == "/" { return path }
            // Trailing slashes off (a byte loop: reversed() here cost more than the rest of the call).
            var end = path.utf8.endIndex
            while end > path.utf8.startIndex && path.utf8[path.utf8.index(before: end)] == UInt8(ascii: "/") {
                end = path.utf8.index(before: end)
            }
            return String(path[..<end])
        }
        var buf = [CChar](repeating: 0, count: 4096)
        let cwd = String(cString: getcwd(&buf, buf.count))
        return path == "." || path.isEmpty ? cwd : cwd + "/" + path
    }

    /// The last bundle loaded and its config.json's identity (device, inode, size, mtime): `run`
    /// needs the spec before `create` and gets the same one, so an unchanged config.json is read
    /// and decoded once per process.
    nonisolated(unsafe) private static var last: (bundle: String, file: [Int], spec: Spec)?

    static func load(_ bundleArg: String?) throws(RuntimeError) -> (bundle: String, spec: Spec) {
        let bundle = absolute(bundleArg ?? ".")
        var st = stat()
        let file = stat(bundle + "/config.json", &st) == 0
            ? [Int(st.st_dev), Int(st.st_ino), Int(st.st_size), st.st_mtim.tv_sec, st.st_mtim.tv_nsec] : []
        if let last, last.bundle == bundle, !file.isEmpty, last.file == file { return (bundle, last.spec) }
        let loaded = try read(bundle)
        last = file.isEmpty ? nil : (bundle, file, loaded.spec)
        return loaded
    }

    private static func read(_ bundle: String) throws(RuntimeError) -> (bundle: String, spec: Spec) {
        guard Files.isDirectory(bundle) else {
            throw RuntimeError(.config, "bundle \(bundle): no such directory")
        }
        let bytes: [UInt8]
        do { bytes = try Files.read(bundle + "/config.json") } catch {
            throw RuntimeError(.config, "\(bundle)/config.json: cannot read: \(String(cString: strerror(error.errno)))")
        }
        do {
            let spec = try ConfigLoader.decode(bytes)
            try Validation.validate(spec)
            return (bundle, spec)
        } catch {
            throw RuntimeError(.config, "\(bundle)/config.json: \(error)")
        }
    }
}
