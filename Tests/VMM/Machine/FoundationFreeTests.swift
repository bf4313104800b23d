import Glibc
import Testing

/// The VMM and every module it links stay free of Foundation: linking FoundationEssentials
/// alone made the static brig-vmm's text 4.7 MB larger and its peak RSS booting the test guest
/// 6.5 → 5.2 MiB when removed (docs/performance.md, "The VMM"). A new `import Foundation…` in one
/// of these folders fails here before it shows up as memory.
@Suite struct FoundationFreeTests {
    /// Sources/ folders of BrigVMM's dependency closure (Package.swift) and of brig-vmm; and
    /// BrigJSON, which codes config.json and state.json on the container path so that it maps
    /// none of Foundation's JSON code (docs/performance.md).
    static let folders = [
        "VMM", "OCI", "Platform/Linux", "Platform/Seccomp", "Executables/brig-vmm", "JSON",
    ]

    static var sources: String {
        var path = #filePath  // …/Tests/VMM/Machine/FoundationFreeTests.swift
        for _ in 0..<4 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path + "/Sources"
    }

    /// The .swift files under `dir`, recursively.
    static func swiftFiles(_ dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name.hasPrefix(".") { continue }
            let path = dir + "/" + name
            if Int32(e.pointee.d_type) == Int32(DT_DIR) { out += swiftFiles(path) } else if name.hasSuffix(".swift") { out.append(path) }
        }
        return out
    }

    static func contents(_ path: String) -> String {
        guard let f = fopen(path, "r") else { return "" }
        defer { fclose(f) }
        var bytes: [UInt8] = [], buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n <= 0 { break }
            bytes += buf[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func noModuleTheVMMLinksImportsFoundation() {
        var files: [String] = []
        for folder in Self.folders { files += Self.swiftFiles(Self.sources + "/" + folder) }
        #expect(files.count > 40, "found only \(files.count) sources under \(Self.sources)")
        for file in files {
            for line in Self.contents(file).split(separator: "\n") {
                let words = line.split(separator: " ")
                guard words.first?.hasPrefix("//") == false, let i = words.firstIndex(of: "import"), i + 1 < words.count,
                      words[i + 1].hasPrefix("Foundation") else { continue }
                Issue.record("\(file): \(line)")
            }
        }
    }
}
