import BrigCore
import BrigLinux
import BrigOCI
import CBrigShim
import FoundationEssentials
import Glibc
import Testing

/// The microvm backend through the CLI, with the agent on the host (BRIG_MICROVM_TRANSPORT=
/// host-agent): everything but the VM itself — backend selection, the monitor process, the agent
/// protocol, the container inside the agent (namespaces code), exec, kill, delete, cleanup.
/// The VM path is covered by the VMM and QEMU tests and runs where hardware KVM exists.
@Suite(.enabled(if: Harness.isRoot && MicroVMHarness.agentBuilt), .serialized)
struct MicroVMHostAgentTests {
    @Test func runPrintsAndReturnsTheExitCode() throws {
        let h = try Harness()
        defer { h.cleanup() }
        try h.write(Harness.spec(["/bin/sh", "-c", "echo hello from microvm; hostname; exit 7"]))
        let r = h.microvm(["run", "--bundle", h.bundle, "m1"])
        #expect(r.code == 7, "\(r.err)")
        #expect(r.out.contains("hello from microvm"))
        h.assertMicroVMClean("m1")
    }

    @Test func lifecycleExecKillDelete() throws {
        let h = try Harness()
        defer { h.cleanup() }
        try h.write(Harness.spec(["/bin/sh", "-c", "trap 'echo got TERM; exit 0' TERM; echo started > /tmp/marker; while :; do sleep 0.1; done"]))
        let c = h.microvm(["create", "--bundle", h.bundle, "--pid-file", h.dir + "/pid", "m2"])
        #expect(c.code == 0, "\(c.err)")
        let created = try h.stateJSON("m2")
        #expect(created["status"] as? String == "created")
        let pid = created["pid"] as? Int ?? 0
        #expect(pid > 0 && (try? Files.readString(h.dir + "/pid")) == "\(pid)")
        // The state pid is the monitor (the VMM in a real VM), not a guest pid.
        let cmd = String(decoding: (try? Files.read("/proc/\(pid)/cmdline")) ?? [], as: UTF8.self)
        #expect(cmd.contains("vm-monitor"))
        #expect(h.microvm(["start", "m2"]).code == 0)
        #expect(try h.stateJSON("m2")["status"] as? String == "running")
        // exec: a second process in the same container (same pid namespace and files).
        var e = h.microvm(["exec", "m2", "/bin/cat", "/tmp/marker"])
        for _ in 0..<50 where !e.out.contains("started") { usleep(100_000); e = h.microvm(["exec", "m2", "/bin/cat", "/tmp/marker"]) }
        #expect(e.code == 0 && e.out.contains("started"), "\(e.err)")
        #expect(h.microvm(["exec", "m2", "/bin/sh", "-c", "exit 5"]).code == 5)
        let ps = h.microvm(["ps", "--format", "json", "m2"])
        #expect(ps.code == 0 && ps.out.hasPrefix("["), "\(ps.err)")
        #expect(h.microvm(["pause", "m2"]).err.contains("host-agent"))
        #expect(h.microvm(["kill", "m2", "TERM"]).code == 0)
        var status = ""
        for _ in 0..<100 { status = (try? h.stateJSON("m2")["status"] as? String) ?? ""; if status == "stopped" { break }; usleep(50_000) }
        #expect(status == "stopped")
        // Why the monitor ended is kept beside the state until delete.
        #expect((try? Files.readString(h.root + "/m2/monitor.exit")) == "the container exited: status 0\n")
        #expect(h.microvm(["delete", "m2"]).code == 0)
        h.assertMicroVMClean("m2")
    }

    @Test func detachedExecReportsItsPid() throws {
        let h = try Harness()
        defer { h.cleanup() }
        try h.write(Harness.spec(["/bin/sleep", "30"]))
        #expect(h.microvm(["run", "-d", "--bundle", h.bundle, "m3"]).code == 0)
        let r = h.microvm(["exec", "-d", "--pid-file", h.dir + "/exec.pid", "m3", "/bin/sh", "-c", "sleep 0.3; exit 4"])
        #expect(r.code == 0, "\(r.err)")
        let pid = Int32((try? Files.readString(h.dir + "/exec.pid")) ?? "") ?? 0
        #expect(pid > 0)
        #expect(h.microvm(["delete", "--force", "m3"]).code == 0)
        h.assertMicroVMClean("m3")
    }

    /// `events` asks the agent, which reads the container's cgroup (the guest's, in a VM).
    @Test func eventsStatsComeFromTheAgent() throws {
        let h = try Harness()
        defer { h.cleanup() }
        try h.write(Harness.spec(["/bin/sleep", "30"]))
        #expect(h.microvm(["run", "-d", "--bundle", h.bundle, "m6"]).code == 0)
        let r = h.microvm(["events", "--stats", "m6"])
        #expect(r.code == 0, "\(r.err)")
        #expect(r.out.hasPrefix("{\"type\":\"stats\",\"id\":\"m6\",\"data\":{") && r.out.contains("\"pids\":{\"current\":"), "\(r.out)")
        #expect(h.microvm(["delete", "--force", "m6"]).code == 0)
        h.assertMicroVMClean("m6")
    }

    @Test func unsupportedConfigFailsCleanly() throws {
        let h = try Harness()
        defer { h.cleanup() }
        var s = Harness.spec(["/bin/true"])
        s.linux?.netDevices = ["eth9": NetDevice(name: "eth9")]
        try h.write(s)
        let r = h.microvm(["create", "--bundle", h.bundle, "m4"])
        #expect(r.code != 0)
        #expect(r.err.contains("linux.netDevices"), "\(r.err)")
        h.assertMicroVMClean("m4")
    }

    @Test func guestErrorsReachTheCLI() throws {
        let h = try Harness()
        defer { h.cleanup() }
        try h.write(Harness.spec(["/no/such/binary"]))
        let r = h.microvm(["run", "--bundle", h.bundle, "m5"])
        #expect(r.code != 0)
        #expect(r.err.contains("/no/such/binary"), "\(r.err)")
        h.assertMicroVMClean("m5")
    }

    /// runtime.md's order under microvm: prestart, createRuntime and createContainer (on the
    /// host, where their paths resolve, with the host state: pid = the monitor; createContainer
    /// in the container's root directory), startContainer (in the container, its state naming
    /// the host's bundle) before the process, poststart after start, poststop last.
    @Test func hooksRunInRuntimeSpecOrder() throws {
        let h = try Harness()
        defer { h.cleanup() }
        let log = h.dir + "/hooks.log"
        let script = """
            #!/bin/sh
            state=$(cat)
            status=$(echo "$state" | sed 's/.*"status" *: *"\\([a-z]*\\)".*/\\1/')
            pid=$(echo "$state" | sed 's/.*"pid" *: *\\([0-9]*\\).*/\\1/')
            bundle=$(echo "$state" | sed 's/.*"bundle" *: *"\\([^"]*\\)".*/\\1/' | tr -d '\\\\')
            echo "$1 $status $pid $bundle $(pwd)" >> "$2"

            """
        try Files.write(h.dir + "/hook.sh", script, flags: O_WRONLY | O_CREAT | O_TRUNC)
        chmod(h.dir + "/hook.sh", 0o755)
        // startContainer runs after pivot_root: its script and log live in the rootfs.
        try Files.write(h.bundle + "/rootfs/hook.sh", script, flags: O_WRONLY | O_CREAT | O_TRUNC)
        chmod(h.bundle + "/rootfs/hook.sh", 0o755)
        var s = Harness.spec(["/bin/sh", "-c", "echo process >> /hooks.log; exec sleep 1000"])
        s.root?.readonly = false
        var hooks = Hooks()
        func hook(_ kind: String) -> [Hook] { [Hook(path: h.dir + "/hook.sh", args: ["hook.sh", kind, log], env: ["PATH=/bin:/usr/bin"], timeout: 10)] }
        hooks.prestart = hook("prestart")
        hooks.createRuntime = hook("createRuntime")
        hooks.createContainer = hook("createContainer")
        hooks.startContainer = [Hook(path: "/hook.sh", args: ["hook.sh", "startContainer", "/hooks.log"], env: ["PATH=/bin"], timeout: 10)]
        hooks.poststart = hook("poststart")
        hooks.poststop = hook("poststop")
        s.hooks = hooks
        try h.write(s)
        func lines(_ path: String) -> [String] { ((try? Files.readString(path)) ?? "").split(separator: "\n").map(String.init) }
        func kinds(_ path: String) -> [String] { lines(path).map { $0.split(separator: " ").prefix(2).joined(separator: " ") } }

        let c = h.microvm(["create", "--bundle", h.bundle, "m7"])
        #expect(c.code == 0, "\(c.err)")
        #expect(kinds(log) == ["prestart creating", "createRuntime creating", "createContainer creating"])
        // The host's hooks see the host's state (the monitor's pid, the bundle), as `brig state`
        // reports it; createContainer runs in the container's root directory.
        let pid = try h.stateJSON("m7")["pid"] as? Int ?? -1
        let fields = lines(log).map { $0.split(separator: " ").map(String.init) }
        #expect(fields.allSatisfy { $0.count == 5 && $0[2] == "\(pid)" && $0[3] == h.bundle }, "\(lines(log)) vs \(pid)")
        let root = realpath(h.bundle + "/rootfs", nil).map { p in defer { free(p) }; return String(cString: p) }
        #expect(fields.last?.last == root, "\(lines(log))")
        let st = h.microvm(["start", "m7"])
        #expect(st.code == 0, "\(st.err)")
        var inside: [String] = []
        for _ in 0..<100 { inside = lines(h.bundle + "/rootfs/hooks.log"); if inside.count >= 2 { break }; usleep(50_000) }
        #expect(inside.first?.hasPrefix("startContainer created") == true && inside.dropFirst().first == "process", "\(inside)")
        #expect(inside.first?.split(separator: " ").dropFirst(3).first.map(String.init) == h.bundle, "\(inside)")
        #expect(kinds(log).last == "poststart running")
        #expect(h.microvm(["delete", "--force", "m7"]).code == 0)
        #expect(kinds(log) == ["prestart creating", "createRuntime creating", "createContainer creating",
                               "poststart running", "poststop stopped"])
        h.assertMicroVMClean("m7")
    }

    /// A failing prestart hook fails create before the container's createContainer hooks run,
    /// with the hook's message, and leaves nothing.
    @Test func failingPrestartHookStopsCreateBeforeCreateContainer() throws {
        let h = try Harness()
        defer { h.cleanup() }
        var s = Harness.spec(["/bin/true"])
        var hooks = Hooks()
        hooks.prestart = [Hook(path: "/bin/sh", args: ["sh", "-c", "echo boom >&2; exit 3"])]
        hooks.createContainer = [Hook(path: "/bin/sh", args: ["sh", "-c", "touch \(h.dir)/createContainer-ran"])]
        s.hooks = hooks
        try h.write(s)
        let r = h.microvm(["create", "--bundle", h.bundle, "m8"])
        #expect(r.code != 0)
        #expect(r.err.contains("prestart hook #0 (/bin/sh) failed: exit status 3: boom"), "\(r.err)")
        #expect(!Files.exists(h.dir + "/createContainer-ran"))
        h.assertMicroVMClean("m8")
    }

    @Test func annotationSelectsTheBackend() throws {
        let h = try Harness()
        defer { h.cleanup() }
        var s = Harness.spec(["/bin/sh", "-c", "echo via annotation"])
        s.annotations = ["run.oci.brig.backend": "microvm"]
        try h.write(s)
        let r = Harness.exec([Harness.binary, "--root", h.root, "run", "--bundle", h.bundle, "m6"], env: MicroVMHarness.env)
        #expect(r.code == 0 && r.out.contains("via annotation"), "\(r.err)")
        h.assertMicroVMClean("m6")
    }
}

/// brig SIGKILLed at each step of a microvm create (host-agent transport: the monitor and its
/// agent stand for the VMM and its guest): listed, and `delete --force` leaves no state dir,
/// monitor or agent. A monitor whose creator died before it reported stops by itself. The same
/// runs with a real VM in e2e/vmhost/microvm-e2e.sh (case 11).
@Suite(.enabled(if: Harness.isRoot && MicroVMHarness.agentBuilt), .serialized)
struct MicroVMCrashTests {
    static let points = ["create.reserved"] + CrashPoint.microvmPoints.filter { $0 != "microvm.image" } + ["create.ready", "create.saved"]

    @Test(arguments: points)
    func killedAtPointLeavesNothingAfterDelete(_ point: String) throws {
        let h = try Harness(); defer { h.cleanup() }
        try h.write(Harness.spec(["/bin/sleep", "1000"]))
        let id = Harness.uniqueID("mvcrash")
        let killed = ReliabilityTests.call(h, ["--backend", "microvm", "create", "--bundle", h.bundle, id],
                                           env: Array(MicroVMHarness.env.dropFirst()) + ReliabilityTests.crashEnv(point))
        #expect(killed.exit == .signaled(SIGKILL), "\(point): brig was not killed there: \(String(describing: killed.exit))")
        if point == "microvm.spawned" || point == "microvm.monitor" {
            // Its creator gone before the monitor reported: nothing would ever stop it.
            var left = h.processesUsing(id)
            for _ in 0..<100 where !left.isEmpty { usleep(50_000); left = h.processesUsing(id) }
            #expect(left.isEmpty, "\(point): the monitor outlived its creator: \(left)")
        }
        let status = ReliabilityTests.listed(h, id)
        #expect(status == (point == "create.saved" ? "created" : "stopped"), "\(point): list shows \(status ?? "nothing")")
        let d = h.microvm(["delete", "--force", id])
        #expect(d.code == 0, "\(point): delete --force: \(d.err)")
        h.assertMicroVMClean(id)
    }
}

/// The KVM transport on a host where it cannot work must fail clearly and leave nothing.
@Suite(.enabled(if: Harness.isRoot))
struct MicroVMKVMRefusalTests {
    @Test func missingKernelIsNamed() throws {
        let h = try Harness()
        defer { h.cleanup() }
        try h.write(Harness.spec(["/bin/true"]))
        let r = Harness.exec([Harness.binary, "--root", h.root, "--backend", "microvm", "create", "--bundle", h.bundle, "k1"],
                             env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "BRIG_VM_KERNEL=/nonexistent/vmlinuz"])
        #expect(r.code != 0)
        #expect(r.err.contains("vm.kernel.path") || r.err.contains("/dev/kvm"), "\(r.err)")
        h.assertMicroVMClean("k1")
    }
}

enum MicroVMHarness {
    static var agent: String { Harness.packageRoot + "/.build/debug/brig-agent" }
    static var agentBuilt: Bool { access(agent, X_OK) == 0 }
    static var env: [String] {
        ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "BRIG_MICROVM_TRANSPORT=host-agent", "BRIG_AGENT=\(agent)"]
    }
}

extension Harness {
    /// `brig --root <private> --backend microvm ARGS` with the host-agent transport.
    func microvm(_ args: [String]) -> Result {
        Harness.exec([Harness.binary, "--root", root, "--backend", "microvm"] + args, cwd: bundle, env: MicroVMHarness.env)
    }

    func stateJSON(_ id: String) throws -> [String: Any] {
        let r = brig(["state", id])
        guard r.code == 0 else { throw HarnessError("state \(id): \(r.err)") }
        let s = try JSONDecoder().decode(ContainerState.self, from: Data(r.out.utf8))
        return ["status": s.status.rawValue, "pid": Int(s.pid)]
    }

    /// Processes (a monitor, an agent) whose command line names the state dir of `id`.
    func processesUsing(_ id: String) -> [String] {
        var left: [String] = []
        for name in (try? Files.list("/proc")) ?? [] {
            guard let pid = Int32(name), pid != getpid() else { continue }
            let cmd = String(decoding: (try? Files.read("/proc/\(name)/cmdline")) ?? [], as: UTF8.self)
            if cmd.contains(root + "/" + id) { left.append("\(pid): \(cmd)") }
        }
        return left
    }

    /// No state dir, and no monitor or agent process still using this test's state root.
    func assertMicroVMClean(_ id: String, sourceLocation: SourceLocation = #_sourceLocation) {
        var left: [String] = []
        for _ in 0..<40 {
            left = processesUsing(id)
            if left.isEmpty { break }
            usleep(50_000)
        }
        #expect(!Files.exists(root + "/" + id), "state dir left behind for \(id)", sourceLocation: sourceLocation)
        #expect(left.isEmpty, "processes left behind: \(left)", sourceLocation: sourceLocation)
    }
}

@Suite(.enabled(if: Harness.isRoot && MicroVMHarness.agentBuilt))
struct MicroVMTerminalTests {
    /// The monitor's host pty reaches the console socket; the guest process has a tty of its
    /// own with the config's size, and resizing the host master resizes it (SIGWINCH → agent).
    @Test func consoleSocketAndResize() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["sh", "-c", "tty; stty size; read a; stty size; echo got:$a"])
        s.process?.terminal = true
        s.process?.consoleSize = Box(height: 33, width: 101)
        try h.write(s)
        let (master, _, exit) = try h.createWithConsoleSocket("t1", global: ["--backend", "microvm"], env: MicroVMHarness.env)
        #expect(exit == .exited(0))
        #expect(h.microvm(["start", "t1"]).code == 0)
        func readUntil(_ marker: String) -> String { Harness.readPTY(master) { $0.contains(marker) } }
        let first = readUntil("33 101")
        #expect(first.contains("/dev/pts/") && first.contains("33 101"), "\(first)")
        _ = brig_set_winsize(master, 40, 120)
        usleep(300_000)
        try Files.writeAll(fd: master, Array("hi\n".utf8))
        let second = readUntil("got:hi")
        #expect(second.contains("40 120") && second.contains("got:hi"), "\(second)")
        close(master)
        _ = h.microvm(["delete", "--force", "t1"])
        h.assertMicroVMClean("t1")
    }
}

/// The KVM transport up to the agent protocol, on any /dev/kvm: brig's vsock test guest stands
/// in for Linux (it accepts CONNECT 1024 but does not speak the agent protocol). create must boot
/// the VM, reach the guest over vsock, fail on the handshake with the guest console in the
/// message, and leave no monitor, VM, socket or state behind.
@Suite(.enabled(if: Harness.isRoot && access("/dev/kvm", R_OK | W_OK) == 0 && access("/usr/bin/gcc", X_OK) == 0))
struct MicroVMKVMTransportTests {
    @Test func vmBootsAndVsockConnectsButTheHandshakeFailsCleanly() throws {
        let h = try Harness()
        defer { h.cleanup() }
        try h.write(Harness.spec(["/bin/true"]))
        let guest = h.dir + "/vsock-guest.elf"
        let b = Harness.exec(["/bin/sh", Harness.packageRoot + "/Tests/VMM/Guests/build.sh", guest, "vsock-guest.c"])
        #expect(b.code == 0, "\(b.err)")
        try Files.write(h.dir + "/initrd", "not an initramfs", flags: O_WRONLY | O_CREAT | O_TRUNC)
        let r = Harness.exec([Harness.binary, "--root", h.root, "--backend", "microvm", "create", "--bundle", h.bundle, "v1"],
                             env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "BRIG_VM_KERNEL=\(guest)",
                                   "BRIG_VM_INITRD=\(h.dir)/initrd", "BRIG_VM_AGENT_TIMEOUT=10"])
        #expect(r.code != 0)
        // The guest printed (so the VM ran) and accepted the host's vsock connection on 1024.
        #expect(r.err.contains("the guest agent did not become ready"), "\(r.err)")
        #expect(r.err.contains("accepted host connection on 1024"), "\(r.err)")
        h.assertMicroVMClean("v1")
        // The rootfs image was built and cached for the next container.
        #expect(((try? Files.list(h.root + "/.images")) ?? []).contains { $0.hasSuffix(".ext4") })
    }
}

/// The whole path: brig create → VMM → Linux → brig-agent → container. Needs hardware
/// virtualization (VMX/SVM) and the guest installed by scripts/install-guest.sh (or
/// BRIG_VM_KERNEL/BRIG_VM_INITRD). On PVM hosts (this project's CI) Linux user space cannot run,
/// so this suite is skipped there, with that reason.
@Suite(.enabled(if: Harness.isRoot && MicroVMFullPath.available, Comment(rawValue: MicroVMFullPath.why)))
struct MicroVMFullPathTests {
    @Test func runExecKillDeleteInARealVM() throws {
        let h = try Harness()
        defer { h.cleanup() }
        try h.write(Harness.spec(["/bin/sh", "-c", "echo hello from the guest; uname -r; exit 3"]))
        let env = MicroVMFullPath.env
        let run = Harness.exec([Harness.binary, "--root", h.root, "--backend", "microvm", "run", "--bundle", h.bundle, "f1"], env: env)
        #expect(run.code == 3 && run.out.contains("hello from the guest"), "\(run.err)")
        try h.write(Harness.spec(["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]))
        #expect(Harness.exec([Harness.binary, "--root", h.root, "--backend", "microvm", "run", "-d", "--bundle", h.bundle, "f2"], env: env).code == 0)
        let e = Harness.exec([Harness.binary, "--root", h.root, "exec", "f2", "/bin/cat", "/proc/1/comm"], env: env)
        #expect(e.code == 0 && e.out.contains("sh"), "\(e.err)")
        #expect(Harness.exec([Harness.binary, "--root", h.root, "kill", "f2", "TERM"], env: env).code == 0)
        var status = ""
        for _ in 0..<100 { status = (try? h.stateJSON("f2")["status"] as? String) ?? ""; if status == "stopped" { break }; usleep(50_000) }
        #expect(status == "stopped")
        #expect(Harness.exec([Harness.binary, "--root", h.root, "delete", "f2"], env: env).code == 0)
        h.assertMicroVMClean("f2")
    }
}

enum MicroVMFullPath {
    static let hardware: Bool = {
        let cpuinfo = (try? Files.readString("/proc/cpuinfo")) ?? ""
        return cpuinfo.contains(" vmx") || cpuinfo.contains(" svm")
    }()
    static var kernel: String { getenv("BRIG_VM_KERNEL").map { String(cString: $0) } ?? "/usr/lib/brig/vmlinuz" }
    static var initrd: String { getenv("BRIG_VM_INITRD").map { String(cString: $0) } ?? "/usr/lib/brig/brig-agent.initrd" }
    static var available: Bool { hardware && access("/dev/kvm", R_OK) == 0 && access(kernel, R_OK) == 0 && access(initrd, R_OK) == 0 }
    static var why: String {
        if !hardware { return "no VMX/SVM on this host (PVM /dev/kvm cannot run Linux user space): the full microvm path needs hardware virtualization" }
        return "guest kernel/initramfs not installed (scripts/install-guest.sh)"
    }
    static var env: [String] { ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "BRIG_VM_KERNEL=\(kernel)", "BRIG_VM_INITRD=\(initrd)"] }
}
