import BrigCgroups
import BrigOCI
import FoundationEssentials
import Glibc
import Testing

/// A temporary directory laid out like a cgroupfs: control files must be created before the
/// code under test writes them (cgroup writes never create files).
final class TempCgroupFS {
    let root: String

    init() {
        var template = Array("/tmp/brig-cgtest-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        root = String(cString: p!)
    }

    deinit { removeTree(root) }

    /// Creates `rel` (a file) with `content`, making parent directories.
    func touch(_ rel: String, _ content: String = "") {
        let path = root + "/" + rel
        mkdirs(String(path[..<path.lastIndex(of: "/")!]))
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        precondition(fd >= 0, "create \(path)")
        _ = content.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }

    /// Creates a cgroup directory with the given control files (empty or with content).
    func cgroup(_ rel: String, _ files: [String: String]) -> CgroupDirectory {
        mkdirs(root + "/" + rel)
        for (f, c) in files { touch(rel + "/" + f, c) }
        return CgroupDirectory(root + "/" + rel)
    }

    func read(_ rel: String) -> String {
        (try? CgroupDirectory(root).read(rel)) ?? "<missing>"
    }

    func exists(_ rel: String) -> Bool { access(root + "/" + rel, F_OK) == 0 }
}

func mkdirs(_ path: String) {
    var cur = ""
    for c in path.split(separator: "/") {
        cur += "/" + c
        mkdir(cur, 0o755)
    }
}

func removeTree(_ path: String) {
    var st = stat()
    guard lstat(path, &st) == 0 else { return }
    if (st.st_mode & S_IFMT) == S_IFDIR {
        for e in CgroupDirectory(path).entries() { removeTree(path + "/" + e) }
        rmdir(path)
    } else {
        unlink(path)
    }
}

/// `linux.resources` from JSON (the spec's own spelling).
func resources(_ json: String) throws -> Resources {
    try JSONDecoder().decode(Resources.self, from: Data(json.utf8))
}

/// Expects `body` to throw a CgroupError whose description contains every `needle`.
func expectCgroupError(_ needles: String..., sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected an error mentioning \(needles)", sourceLocation: sourceLocation)
    } catch {
        #expect(error is CgroupError, "not a CgroupError: \(error)", sourceLocation: sourceLocation)
        let text = String(describing: error)
        for n in needles {
            #expect(text.contains(n), "error \(text.debugDescription) lacks \(n.debugDescription)", sourceLocation: sourceLocation)
        }
    }
}

// MARK: - an eBPF interpreter for the instruction subset DeviceProgram emits

enum BPFFault: Error, Equatable { case badOpcode(UInt8), badLoad(Int16), runaway, fellOff }

/// Runs a cgroup device program on `struct bpf_cgroup_dev_ctx` and returns r0.
func runDeviceProgram(_ prog: [BPFInstruction], type: UInt32, access: UInt32, major: UInt32, minor: UInt32) throws -> UInt64 {
    let ctxBase: UInt64 = 0xC7C7_0000_0000
    let ctx: [Int16: UInt32] = [0: access << 16 | type, 4: major, 8: minor]
    var r = [UInt64](repeating: 0, count: 11)
    r[1] = ctxBase
    var pc = 0, steps = 0
    while true {
        guard pc >= 0 && pc < prog.count else { throw BPFFault.fellOff }
        steps += 1
        if steps > 10_000 { throw BPFFault.runaway }
        let i = prog[pc]
        let d = Int(i.dst), s = Int(i.src)
        let imm64 = UInt64(bitPattern: Int64(i.imm))
        var next = pc + 1
        switch i.opcode {
        case BPFInstruction.ldxMemW:
            guard r[s] == ctxBase, let v = ctx[i.offset] else { throw BPFFault.badLoad(i.offset) }
            r[d] = UInt64(v)
        case BPFInstruction.and32Imm: r[d] = UInt64(UInt32(truncatingIfNeeded: r[d]) & UInt32(bitPattern: i.imm))
        case BPFInstruction.rsh32Imm: r[d] = UInt64(UInt32(truncatingIfNeeded: r[d]) >> UInt32(i.imm))
        case BPFInstruction.mov64Reg: r[d] = r[s]
        case BPFInstruction.mov64Imm: r[d] = imm64
        case BPFInstruction.jneImm: if r[d] != imm64 { next += Int(i.offset) }
        case BPFInstruction.jneReg: if r[d] != r[s] { next += Int(i.offset) }
        case BPFInstruction.jeqImm: if r[d] == imm64 { next += Int(i.offset) }
        case BPFInstruction.exit: return r[0]
        default: throw BPFFault.badOpcode(i.opcode)
        }
        guard next > pc else { throw BPFFault.runaway }  // the verifier forbids back-edges here
        pc = next
    }
}

// MARK: - root-only gating

let isRoot = getuid() == 0

/// Whether the root-only v1 integration tests can run here; prints why not.
func rootV1Enabled() -> Bool {
    if !isRoot { print("root-only cgroup test disabled: not running as root (uid \(getuid()))"); return false }
    guard let layout = try? CgroupLayout.current(), layout.mode != .unified,
          layout.hierarchy(for: "memory") != nil, layout.hierarchy(for: "freezer") != nil else {
        print("root-only cgroup test disabled: no cgroup v1 memory+freezer hierarchies on this host")
        return false
    }
    return true
}

func rootUnifiedScratchEnabled() -> Bool {
    if !isRoot { print("root-only BPF test disabled: not running as root (uid \(getuid()))"); return false }
    guard let layout = try? CgroupLayout.current(), layout.unifiedMount != nil else {
        print("root-only BPF test disabled: no cgroup2 mount")
        return false
    }
    return true
}
