import Glibc
import Testing

/// brig, brig-agent, brig-vmm and every module they link stay free of Foundation. For the VMM,
/// linking FoundationEssentials alone made the static brig-vmm's text 4.7 MB larger and its peak
/// RSS booting the test guest 6.5 → 5.2 MiB when removed (docs/performance.md, "The VMM"); for
/// brig and brig-agent (issue 17) it was a third of brig's protocol-conformance records, which
/// every first conformance lookup of every brig process scans. A new `import Foundation…` in
/// one of these modules fails here before it shows up as memory or CPU.
@Suite struct FoundationFreeTests {
    /// The executables whose dependency closure (in Package.swift) must not import Foundation.
    static let executables = ["brig", "brig-agent", "brig-vmm"]

    static var root: String {
        var path = #filePath  // …/Tests/VMM/Machine/FoundationFreeTests.swift
        for _ in 0..<4 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path
    }

    /// Package.swift's targets declared with its helpers, `lib("Name", "Path", [deps])` and
    /// `exe("Name", [deps], …)`: name → (folder under Sources/, dependencies).
    static func targets(_ manifest: String) -> [String: (folder: String, deps: [String])] {
        var out: [String: (folder: String, deps: [String])] = [:]
        let text = Array(manifest.utf8)
        var i = 0
        while i < text.count {
            let atCall = text[i...].starts(with: "lib(\"".utf8) || text[i...].starts(with: "exe(\"".utf8)
            guard atCall, i == 0 || !Self.isIdentifier(text[i - 1]) else { i += 1; continue }
            let isLib = text[i] == UInt8(ascii: "l")
            // The call's text up to its closing parenthesis; its quoted strings in order.
            var depth = 0, j = i + 3, strings: [String] = [], quote: Int? = nil
            while j < text.count {
                let c = text[j]
                if let q = quote {
                    if c == UInt8(ascii: "\"") { strings.append(String(decoding: text[(q + 1)..<j], as: UTF8.self)); quote = nil }
                } else if c == UInt8(ascii: "\"") {
                    quote = j
                } else if c == UInt8(ascii: "(") {
                    depth += 1
                } else if c == UInt8(ascii: ")") {
                    depth -= 1
                    if depth == 0 { break }
                }
                j += 1
            }
            if isLib, strings.count >= 2 {
                out[strings[0]] = (strings[1], Array(strings.dropFirst(2)))
            } else if !isLib, let name = strings.first {
                out[name] = ("Executables/" + name, Array(strings.dropFirst()))
            }
            i = j
        }
        return out
    }

    static func isIdentifier(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
            || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "_") || c == UInt8(ascii: ".")
    }

    /// The targets `roots` link, themselves included.
    static func closure(_ roots: [String], _ targets: [String: (folder: String, deps: [String])]) -> Set<String> {
        var seen = Set<String>(), pending = roots
        while let name = pending.popLast() {
            guard seen.insert(name).inserted else { continue }
            pending += targets[name]?.deps ?? []
        }
        return seen
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

    /// Whether a source line imports a Foundation module (`import Foundation`,
    /// `import FoundationEssentials`, `@_implementationOnly import struct Foundation.Data`, …).
    static func importsFoundation(_ line: Substring) -> Bool {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard words.first?.hasPrefix("//") == false, let i = words.firstIndex(of: "import") else { return false }
        return words[(i + 1)...].prefix(2).contains { $0.hasPrefix("Foundation") || $0.hasPrefix("_Foundation") }
    }

    @Test func packageTargetsAreRead() {
        let targets = Self.targets(Self.contents(Self.root + "/Package.swift"))
        let linked = Self.closure(Self.executables, targets)
        // The parse finds what the executables are known to link (a parser that found nothing
        // would make the check below pass vacuously).
        for module in ["BrigCLI", "BrigCore", "BrigJSON", "BrigNamespaces", "BrigMicroVM", "BrigAgent", "BrigAgentProtocol",
                       "BrigAgentGuest", "BrigVMM", "BrigOCI", "BrigLinux", "BrigSeccomp", "BrigCgroups", "brig-agent"] {
            #expect(linked.contains(module), "\(module) is not in the closure of \(Self.executables)")
        }
        #expect(targets["BrigCLI"]?.folder == "CLI")
        #expect(targets["brig-vmm"]?.folder == "Executables/brig-vmm")
        #expect(!linked.contains("brig-seccomp-probe"))
        #expect(Self.importsFoundation("import FoundationEssentials"))
        #expect(Self.importsFoundation("@_implementationOnly import struct Foundation.Data"))
        #expect(!Self.importsFoundation("// import Foundation"))
        #expect(!Self.importsFoundation("import BrigJSON"))
    }

    @Test func noModuleTheExecutablesLinkImportsFoundation() {
        let targets = Self.targets(Self.contents(Self.root + "/Package.swift"))
        var files: [String] = []
        for name in Self.closure(Self.executables, targets) {
            guard let folder = targets[name]?.folder else { continue }  // a system library
            files += Self.swiftFiles(Self.root + "/Sources/" + folder)
        }
        #expect(files.count > 150, "found only \(files.count) sources under \(Self.root)/Sources")
        for file in files {
            for line in Self.contents(file).split(separator: "\n") where Self.importsFoundation(line) {
                Issue.record("\(file): \(line)")
            }
        }
    }
}
