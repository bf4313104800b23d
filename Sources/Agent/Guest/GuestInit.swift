import BrigLinux
import CBrigAgentInit
import Glibc

/// What brig-agent does as PID 1 of a guest VM: mount the kernel filesystems, load the modules
/// the initramfs carries, name the host, bring `lo` up, then split in two — the agent runs in a
/// child while PID 1 reaps orphans, forwards SIGTERM, and powers the VM off when the agent exits.
public enum GuestInit {
    /// The guest's initramfs lists the modules to load here, one path a line, dependencies first.
    public static let moduleList = "/lib/modules/brig.order"
    /// The host's exit device (brig's VMM and QEMU's isa-debug-exit); written only if present.
    public static let exitPort: UInt16 = 0xF4

    /// Where the virtio-fs device named by `brig.fs=<tag>` is mounted (GuestShares.guestDirectory).
    public static let sharedDirectory = "/run/brig-fs"

    /// True when running as the guest's init.
    public static var isPID1: Bool { getpid() == 1 }

    /// A line on the console (PID 1's stderr is /dev/console).
    public static func log(_ message: String) {
        let bytes = Array("brig-agent: \(message)\n".utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }

    /// Mounts, modules, hostname, loopback. Each step is logged; a failure stops bring-up.
    public static func bringUp(hostname: String = "brig") throws(SystemError) {
        let proc = brig_agent_init_proc_status()
        if proc < 0 { throw SystemError(errno: -proc, "mount proc on /proc (constructor)") }
        log("pid \(getpid()), /proc mounted before the Swift runtime started")
        let root = brig_agent_init_root_status()
        if root < 0 { throw SystemError(errno: -root, "move the initramfs into a tmpfs root") }
        if root == 1 { log("moved the initramfs into a tmpfs root (containers can pivot_root)") }
        for m in mounts { try mount(m) }
        if let tag = cmdline()["brig.fs"], !tag.isEmpty {
            // The host's bind sources (virtio-fs, docs/microvm.md); the container binds from here.
            try mount(Mount(source: tag, target: sharedDirectory, fstype: "virtiofs", flags: UInt(MS_NOSUID | MS_NODEV), data: nil))
            log("mounted virtio-fs \(tag) on \(sharedDirectory)")
        }
        // The devtmpfs ptmx belongs to the initial devpts instance; point it at ours.
        unlink("/dev/ptmx")
        try sys("symlink pts/ptmx /dev/ptmx") { symlink("pts/ptmx", "/dev/ptmx") }
        let loaded = try loadModules()
        if !loaded.isEmpty { log("loaded modules: \(loaded.joined(separator: " "))") }
        try sys("sethostname \(hostname)") { sethostname(hostname, hostname.utf8.count) }
        try sys("bring lo up") { brig_interface_up("lo") }
        log("bring-up done: mounted \(mounts.map(\.target).joined(separator: " ")), hostname \(hostname), lo up")
    }

    struct Mount { var source, target, fstype: String; var flags: UInt; var data: String? }

    static let mounts: [Mount] = {
        let nsx = UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC)
        return [
            Mount(source: "sysfs", target: "/sys", fstype: "sysfs", flags: nsx, data: nil),
            Mount(source: "devtmpfs", target: "/dev", fstype: "devtmpfs", flags: UInt(MS_NOSUID), data: "mode=0755"),
            Mount(source: "devpts", target: "/dev/pts", fstype: "devpts", flags: UInt(MS_NOSUID | MS_NOEXEC),
                  data: "newinstance,ptmxmode=0666,mode=0620,gid=5"),
            Mount(source: "shm", target: "/dev/shm", fstype: "tmpfs", flags: UInt(MS_NOSUID | MS_NODEV), data: "mode=1777"),
            Mount(source: "tmpfs", target: "/run", fstype: "tmpfs", flags: UInt(MS_NOSUID | MS_NODEV), data: "mode=0755"),
            Mount(source: "tmpfs", target: "/tmp", fstype: "tmpfs", flags: UInt(MS_NOSUID | MS_NODEV), data: "mode=1777"),
            Mount(source: "cgroup2", target: "/sys/fs/cgroup", fstype: "cgroup2", flags: nsx, data: nil),
        ]
    }()

    static func mount(_ m: Mount) throws(SystemError) {
        try Files.mkdirAll(m.target)
        try sys("mount \(m.fstype) on \(m.target)") {
            Glibc.mount(m.source, m.target, m.fstype, m.flags, m.data)
        }
    }

    /// Loads each module named in `list` (dependencies first); already-loaded ones are skipped.
    /// Returns the names loaded. A missing list means a kernel with everything builtin.
    public static func loadModules(list: String = moduleList) throws(SystemError) -> [String] {
        guard Files.exists(list) else { return [] }
        var loaded: [String] = []
        for path in try Files.readString(list).split(separator: "\n").map(String.init) where !path.isEmpty {
            let fd = try Files.open(path, O_RDONLY | O_CLOEXEC)
            defer { close(fd) }
            if brig_finit_module(fd, "", 0) != 0 {
                if errno == EEXIST { continue }
                throw SystemError.last("finit_module \(path)")
            }
            let file = path.split(separator: "/").last.map(String.init) ?? path
            loaded.append(file.hasSuffix(".ko") ? String(file.dropLast(3)) : file)
        }
        return loaded
    }

    /// The kernel command line's `key=value` words (bare words map to "").
    public static func parseCmdline(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for word in text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }) {
            if let eq = word.firstIndex(of: "=") {
                out[String(word[..<eq])] = String(word[word.index(after: eq)...])
            } else {
                out[String(word)] = ""
            }
        }
        return out
    }

    public static func cmdline() -> [String: String] {
        parseCmdline((try? Files.readString("/proc/cmdline")) ?? "")
    }

    /// Forks: returns in the child (run the agent there and `exit` with its status), while PID 1
    /// stays here reaping every child until the agent's is gone, then powers the VM off.
    public static func superviseAgent() {
        let agent = fork()
        if agent < 0 { log("fork failed (\(errno)); running the agent as PID 1"); return }
        if agent == 0 { return }
        forwardTermination(to: agent)
        var status: Int32 = 0
        while true {
            var s: Int32 = 0
            let pid = waitpid(-1, &s, 0)
            if pid == agent { status = s; break }
            if pid < 0 && errno != EINTR { break }
        }
        let code = exitCode(status)
        // The guest's uptime (its monotonic clock, which starts with the kernel): benchmarks
        // print it beside a boot's wall time (benchmarks/microvm.sh).
        log("agent exited with status \(code); powering off, guest uptime \(Int(monotonicSeconds() * 1000)) ms")
        powerOff(status: code)
    }

    /// Shell-style exit code of a wait status.
    static func exitCode(_ s: Int32) -> Int32 {
        (s & 0x7f) == 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f)
    }

    nonisolated(unsafe) static var agentPID: pid_t = 0

    /// SIGTERM/SIGINT, and busybox `poweroff`'s SIGUSR2, sent to PID 1 become SIGTERM to the agent;
    /// when it is gone PID 1 powers off. (The kernel only delivers signals PID 1 handles.)
    static func forwardTermination(to pid: pid_t) {
        agentPID = pid
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = { _ in kill(GuestInit.agentPID, SIGTERM) }
        sigemptyset(&sa.sa_mask)
        for sig in [SIGTERM, SIGINT, SIGUSR2] { sigaction(sig, &sa, nil) }
    }

    /// Reports `status` on the exit port if the VMM has one, then powers off. Never returns.
    public static func powerOff(status: Int32) -> Never {
        if cmdline()["brig.exitport"] != nil { _ = brig_outb_exit(exitPort, UInt8(truncatingIfNeeded: status)) }
        _ = brig_power_off()
        log("reboot(RB_POWER_OFF) failed: \(errno)")
        exit(status)
    }
}
