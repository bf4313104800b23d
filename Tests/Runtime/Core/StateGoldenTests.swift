import BrigCore
import BrigJSON
import BrigLinux
import BrigOCI
import Glibc
import Testing

/// state.json as the store reads it, against the outcomes of the synthesized Codable decoder
/// (Golden): the record (its fingerprint) or the store's "corrupt" message, for records of each
/// backend and of the previous format, and each mutation of them (Mutations).
@Suite struct StateGoldenTests {
    static let common = #""id":"x","bundle":"/b","rootfs":"/b/rootfs","pid":42,"pidStartTime":18446744073709551615,"created":"2026-12-05T08:00:00Z","owner":"u""#

    static let records = [
        "namespaces": "{" + common + #","handle":{"namespaces":{"cgroup":{"mode":"hybrid","#
            + #""paths":{"memory":"/sys/fs/cgroup/memory/x","":"/sys/fs/cgroup/unified/x"},"unifiedMount":"/sys/fs/cgroup/unified","#
            + #""created":["/sys/fs/cgroup/memory/x","/sys/fs/cgroup/unified/x"],"joinedExisting":false,"#
            + #""systemd":{"name":"brig-x.scope","slice":"system.slice","user":false,"containerID":"x","started":true}},"systemdCgroup":true}},"#
            + #""annotations":{"a":"1","9":"2"},"hooks":{"poststop":[{"path":"/h","args":["h"],"env":["E=1"],"timeout":5}]},"#
            + #""incomplete":true,"helpers":[{"pid":7,"startTime":8},{"pid":9,"startTime":10}]}"#,
        "microvm": "{" + common + #","handle":{"microvm":{"mode":"kvm","stateDir":"/run/brig/x","guestPid":3,"#
            + #""cgroup":{"mode":"unified","paths":{"":"/sys/fs/cgroup/x"},"created":[],"joinedExisting":true}}}}"#,
        "legacy namespaces": "{" + common + #","backend":"namespaces","systemdCgroup":true,"cgroup":{"mode":"legacy","#
            + #""paths":{"memory":"/m"},"created":["/m"],"joinedExisting":false}}"#,
        "legacy microvm": "{" + common + #","backend":"microvm","cgroup":{"mode":"unified","paths":{},"#
            + #""created":[],"joinedExisting":false},"backendState":{"mode":"host-agent","dir":"/run/brig/x","guestPid":"7"}}"#,
    ]

    static func cases() throws -> [(label: String, outcome: String)] {
        let root = "/tmp/brig-state-golden-\(getpid())"
        defer { Files.removeAll(root) }
        let store = StateStore(root: root)
        try Files.mkdirAll(store.directory("x"))
        func outcome(_ bytes: [UInt8]) throws -> String {
            try Files.writeAtomically(store.directory("x") + "/state.json", bytes)
            switch try store.read("x") {
            case .record(let r): return "ok " + Golden.hash(try JSONEncoding.encode(r, format: .sortedKeys))
            case .corrupt(let why): return "corrupt " + why.replacing(store.directory("x"), with: "DIR")
            }
        }
        var out: [(String, String)] = []
        for text in ["", "{", "[]", "null", "{}"] { out.append(("text \(text)", try outcome(Array(text.utf8)))) }
        for name in records.keys.sorted() {
            for (label, json) in Mutations.all(of: try JSONParser.parse(Array(records[name]!.utf8))) {
                out.append(("\(name): \(label)", try outcome(JSONWriter.write(json))))
            }
        }
        return out
    }

    @Test func outcomesAreThoseOfTheCodableDecoder() throws {
        let cases = try Self.cases()
        #expect(cases.count > 500)
        for kind in ["ok ", "not JSON", "missing ", "Expected to decode", "but found null", "unknown backend", "no known backend"] {
            #expect(cases.contains { $0.outcome.contains(subsequence: kind) }, "no case ends in \(kind)")
        }
        try Golden.check("state-golden.txt", cases)
    }
}
