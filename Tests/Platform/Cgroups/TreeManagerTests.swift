@testable import BrigCgroups
import BrigOCI
import Glibc
import Testing

/// The body V1Manager and V2Manager share (TreeManager's extension), driven through a manager
/// whose differing parts are scripted: undo on a failed create or join, apply/update routing,
/// the freeze loop (repeat writes, settling, timeout and thaw-back), destroy of a joined cgroup.
@Suite struct TreeManagerTests {
    let fs = TempCgroupFS()

    final class Scripted: TreeManager {
        let mode = CgroupMode.legacy
        var skipDevices = false
        var freezeTimeout = 0.5
        var tree: CgroupTree
        var joinedExisting = false
        let freezerDir: CgroupDirectory
        var prepareError: CgroupError?
        var frozenError: CgroupError?
        var sets: [(pids: Int64?, devices: Bool)] = []
        /// States `current` reports, one per poll (the last repeats); and the file's content
        /// at each poll (a write since the previous poll shows as the request).
        var states: [String] = []
        var seen: [String] = []
        var repeats = true

        init(leaves: [String], freezerDir: String) {
            tree = CgroupTree(leaves: leaves, created: [])
            self.freezerDir = CgroupDirectory(freezerDir)
        }

        var state: CgroupState {
            CgroupState(mode: mode, paths: ["x": tree.leaves[0]], created: tree.created, joinedExisting: joinedExisting)
        }
        func prepareCreated() throws { if let prepareError { throw prepareError } }
        func refuseFrozen() throws { if let frozenError { throw frozenError } }
        func set(_ r: Resources, devices: Bool) throws { sets.append((r.pids?.limit, devices)) }
        func freezer() throws -> Freezer {
            let d = freezerDir
            return Freezer(directory: d, file: "state", request: { $0 ? "FREEZE" : "THAW" }, settled: { $0 ? "FROZEN" : "THAWED" },
                           current: { [self] in
                               seen.append(try d.read("state"))
                               try d.write("state", "polled")
                               let s = states[min(seen.count - 1, states.count - 1)]
                               return s
                           },
                           describe: { "<\($0)>" }, repeatsWrite: repeats)
        }
        func isFrozen() throws -> Bool { false }
        func stats() throws -> CgroupStats { CgroupStats() }
        func oomKillCount() throws -> UInt64 { 0 }
    }

    func manager() -> Scripted {
        fs.touch("fz/state", "")
        return Scripted(leaves: [fs.root + "/one/a/leaf", fs.root + "/two/leaf"], freezerDir: fs.root + "/fz")
    }

    @Test func aFailedCreateRemovesEveryDirectoryItMade() throws {
        let m = manager()
        m.prepareError = .unsupported(field: "f", reason: "scripted")
        expectCgroupError("scripted") { try m.create() }
        #expect(!fs.exists("one") && !fs.exists("two") && m.tree.created.isEmpty)
        m.prepareError = nil
        try m.create()
        #expect(fs.exists("one/a/leaf") && fs.exists("two/leaf"))
        #expect(m.tree.created == [fs.root + "/one", fs.root + "/one/a", fs.root + "/one/a/leaf", fs.root + "/two", fs.root + "/two/leaf"])
    }

    @Test func makeDirectoriesReportsExactlyWhatItMade() throws {
        fs.touch("p/file")
        // The parent exists: one mkdir (the fast path), the leaf reported as made.
        #expect(try makeDirectories(fs.root + "/p/leaf") == [fs.root + "/p/leaf"])
        #expect(try makeDirectories(fs.root + "/p/leaf") == [])  // it exists now: nothing made
        #expect(try makeDirectories(fs.root + "//p/deeper/x/") == [fs.root + "/p/deeper", fs.root + "/p/deeper/x"])
        // A file in the way: the error names the path, and what was made before it is removed.
        expectCgroupError(fs.root + "/p/file/sub") { _ = try makeDirectories(fs.root + "/p/file/sub/leaf") }
        expectCgroupError(fs.root + "/q/new/../file/x") {
            fs.touch("q/file")
            _ = try makeDirectories(fs.root + "/q/new/../file/x")
        }
        #expect(!fs.exists("q/new"))
        try removeCgroupTree(fs.root + "/p/deeper")
        #expect(!fs.exists("p/deeper") && fs.exists("p/leaf"))
        try removeCgroupTree(fs.root + "/p/deeper")  // already gone: not an error
    }

    @Test func joinOfAFrozenCgroupKeepsWhatExistedAndRemovesWhatItMade() throws {
        fs.touch("one/a/leaf/cgroup.procs", "7\n")
        let m = manager()
        m.frozenError = .frozen(path: "p", reason: "scripted")
        expectCgroupError("scripted") { try m.join() }
        #expect(fs.exists("one/a/leaf") && !fs.exists("two"))
        m.frozenError = nil
        #expect(try m.join() == true)  // populated: a sandbox joined as is
        #expect(m.tree.created == [fs.root + "/two", fs.root + "/two/leaf"])
        try m.apply(try resources(#"{"pids":{"limit":3}}"#))
        #expect(m.sets.isEmpty)  // a joined sandbox keeps its limits
        try m.update(try resources(#"{"pids":{"limit":4}}"#))
        try m.update(try resources(#"{"pids":{"limit":5},"devices":[]}"#))
        #expect(m.sets.map(\.pids) == [4, 5] && m.sets.map(\.devices) == [false, true])
        try m.destroy()
        #expect(!fs.exists("two") && fs.exists("one/a/leaf"))  // joined: kept without force; what it made beside it goes
        unlink(fs.root + "/one/a/leaf/cgroup.procs")  // a cgroupfs directory holds no files of its own
        try m.destroy(force: true)
        #expect(!fs.exists("two") && !fs.exists("one/a/leaf") && fs.exists("one/a"))
    }

    @Test func applyOfANewCgroupWritesDevicesAndAddProcessReachesEveryLeaf() throws {
        let m = manager()
        try m.create()
        fs.touch("one/a/leaf/cgroup.procs"); fs.touch("two/leaf/cgroup.procs")
        try m.apply(try resources(#"{"pids":{"limit":3}}"#))
        #expect(m.sets.map(\.devices) == [true])
        try m.addProcess(42)
        #expect(fs.read("one/a/leaf/cgroup.procs") == "42" && fs.read("two/leaf/cgroup.procs") == "42")
        fs.touch("two/leaf/sub/cgroup.procs", "9\n")
        #expect(try m.pids() == [9, 42])
        for f in ["one/a/leaf/cgroup.procs", "two/leaf/cgroup.procs", "two/leaf/sub/cgroup.procs"] { unlink(fs.root + "/" + f) }
        try m.destroy()
        #expect(!fs.exists("one") && !fs.exists("two"))
    }

    @Test func freezeRepeatsTheWriteUntilTheKernelSettles() throws {
        let m = manager()
        m.states = Array(repeating: "FREEZING", count: 60) + ["FROZEN"]
        try m.freeze()
        // Written once up front and again every 25 polls while not settled.
        #expect(m.seen.count == 61)
        #expect(m.seen.indices.filter { m.seen[$0] == "FREEZE" } == [0, 25, 50])
        m.seen = []; m.repeats = false
        m.states = ["FREEZING"] + Array(repeating: "THAWED", count: 1)
        try m.thaw()
        #expect(m.seen == ["THAW", "polled"])
    }

    @Test func aFreezeThatNeverSettlesThawsAgainAndNamesBothStates() throws {
        let m = manager()
        m.freezeTimeout = 0.02
        m.repeats = false
        m.states = ["FREEZING"]
        expectCgroupError("<FROZEN>", "<FREEZING>", fs.root + "/fz") { try m.freeze() }
        #expect(fs.read("fz/state") == "THAW")  // not left half-frozen
        // A thaw that times out leaves the request in place.
        m.states = ["FROZEN"]
        expectCgroupError("<THAWED>", "<FROZEN>") { try m.thaw() }
        #expect(fs.read("fz/state") == "polled")
    }
}
