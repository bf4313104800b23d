import BrigAgentProtocol
import BrigLinux
import BrigOCI
import Glibc
import Testing

/// brig-agent as PID 1 of a real Linux guest under QEMU (TCG, no KVM needed) with the initramfs
/// from scripts/make-agent-initramfs.sh and the busybox rootfs on a virtio-blk ext4 disk; the
/// host talks to the agent over the guest's second serial port. The guest kernel is Debian's
/// cloud kernel (virtio as modules) and, when scripts/build-guest-kernel.sh has built it, brig's
/// own kernel (everything built in; the one the microvm backend boots).
enum QemuGuest {
    static let packageRoot: String = {
        var parts = #filePath.split(separator: "/").map(String.init)
        parts.removeLast(4)  // Tests/Agent/…/X.swift
        return "/" + parts.joined(separator: "/")
    }()
    static let qemu = "/usr/bin/qemu-system-x86_64"
    static let agent = packageRoot + "/.build/release/brig-agent"
    static let rootfs = packageRoot + "/.cache/rootfs"

    /// A guest kernel: its image for QEMU's -kernel, `uname -r`, and whether the initramfs
    /// carries its virtio modules (false: built in).
    struct Kernel: CustomTestStringConvertible, Sendable {
        var name, image, release: String
        var modules: Bool
        var testDescription: String { name }
    }

    static let debianKernel: Kernel? = {
        let names = ((try? Files.list("/boot")) ?? []).filter { $0.hasPrefix("vmlinuz-") && $0.hasSuffix("-cloud-amd64") }
        return names.sorted().last.map {
            Kernel(name: "debian-cloud", image: "/boot/" + $0, release: String($0.dropFirst("vmlinuz-".count)), modules: true)
        }
    }()

    /// brig's kernel if already built (either PVM flavour; the int3 patch is harmless here);
    /// never builds it: that takes ~10 min.
    static let brigKernel: Kernel? = {
        for pvm in [0, 1] {
            let out = commandOutput("PVM_HOST=\(pvm) sh '\(packageRoot)/scripts/build-guest-kernel.sh' --cached")
            guard out.status == 0, let vmlinux = out.text.split(separator: "\n").last else { continue }
            let dir = String(vmlinux.dropLast("/vmlinux".count))
            guard let release = try? Files.read(dir + "/kernelrelease") else { continue }
            let r = String(decoding: release, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
            return Kernel(name: "brig", image: dir + "/bzImage", release: r, modules: false)
        }
        print("QEMU guest test: brig's kernel not built (scripts/build-guest-kernel.sh); only Debian's is tested")
        return nil
    }()

    static var kernels: [Kernel] { [debianKernel, brigKernel].compactMap { $0 } }

    /// Why the test cannot run here, printed when it is skipped.
    static let missing: String? = {
        var why: [String] = []
        if getuid() != 0 { why.append("root (mke2fs -d keeps owners; the guest runs containers)") }
        if !Files.exists(qemu) { why.append("\(qemu) (apt-get install qemu-system-x86)") }
        if kernels.isEmpty { why.append("/boot/vmlinuz-*-cloud-amd64 (apt-get install linux-image-cloud-amd64) or scripts/build-guest-kernel.sh") }
        if !Files.exists(agent) { why.append("\(agent) (swift build -c release --product brig-agent)") }
        if !Files.exists(rootfs + "/bin/busybox") { why.append("\(rootfs) (scripts/make-rootfs.sh .cache/rootfs)") }
        if why.isEmpty { return nil }
        let reason = "QEMU guest test skipped: needs " + why.joined(separator: ", ")
        print(reason)
        return reason
    }()

    static func sh(_ command: String) throws -> Int32 {
        let pid = try Spawn.spawn(Spawn.Options(path: "/bin/sh", args: ["sh", "-c", command], env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]))
        return try Spawn.wait(pid).code
    }

    static func commandOutput(_ command: String) -> (status: Int32, text: String) {
        guard let p = popen(command + " 2>/dev/null", "r") else { return (-1, "") }
        var out: [UInt8] = [], buf = [UInt8](repeating: 0, count: 4096)
        while true { let n = fread(&buf, 1, buf.count, p); if n <= 0 { break }; out += buf[0..<n] }
        let s = pclose(p)
        return ((s >> 8) & 0xFF, String(decoding: out, as: UTF8.self))
    }

    /// One QEMU run: initramfs and ext4 disk in a temporary directory, the agent on ttyS1 via
    /// `socket`, the console in `console`; killed and cleaned up on deinit if still running.
    final class Boot {
        let dir: String
        let socket: String
        let console: String
        let pid: pid_t
        var status: Spawn.Exit?

        init(transport: String, kernel: Kernel) throws {
            var template = Array("/tmp/brig-qemu-guest-XXXXXX".utf8CString)
            guard let p = mkdtemp(&template) else { throw SystemError.last("mkdtemp") }
            dir = String(cString: p)
            socket = dir + "/agent.sock"
            console = dir + "/console.log"
            let initrd = dir + "/initramfs.img", disk = dir + "/rootfs.ext4"
            let modules = kernel.modules ? "--kernel '\(kernel.release)'" : "--no-modules"
            try #require(try sh("sh '\(packageRoot)/scripts/make-agent-initramfs.sh' '\(initrd)' --agent '\(agent)' \(modules) 2>/dev/null") == 0)
            try #require(try sh("mke2fs -q -F -t ext4 -d '\(rootfs)' '\(disk)' 32M") == 0)
            pid = try Spawn.spawn(Spawn.Options(path: "/usr/bin/timeout", args: [
                "timeout", "150", qemu, "-M", "pc", "-accel", "tcg", "-m", "512", "-smp", "1",
                "-nographic", "-no-reboot", "-monitor", "none", "-nodefaults",
                "-kernel", kernel.image, "-initrd", initrd,
                "-append", "console=ttyS0 panic=-1 brig.transport=\(transport) brig.exitport",
                // Port 0xF4 as in brig's VMM: the agent's exit status reaches the host as QEMU's.
                "-device", "isa-debug-exit,iobase=0xf4,iosize=0x01",
                "-drive", "file=\(disk),format=raw,if=virtio",
                "-serial", "file:\(console)",
                "-chardev", "socket,path=\(socket),server=on,wait=off,id=agent", "-serial", "chardev:agent",
            ], env: []))
        }

        /// Waits for QEMU to exit (nil if it had to be killed after `timeout` s).
        func wait(timeout: Double = 60) throws -> Spawn.Exit? {
            status = try Spawn.wait(pid, timeout: timeout)
            if status == nil { status = .signaled(SIGKILL) }
            return status
        }

        var consoleText: String { String(decoding: (try? Files.read(console)) ?? [], as: UTF8.self) }

        deinit {
            if status == nil { Glibc.kill(pid, SIGKILL); _ = try? Spawn.wait(pid) }
            Files.removeAll(dir)
        }
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

@Suite(.serialized, .enabled(if: QemuGuest.missing == nil, Comment(rawValue: QemuGuest.missing ?? "")), .timeLimit(.minutes(5)))
struct QemuGuestTests {
    @Test(arguments: QemuGuest.kernels)
    func agentRunsContainersAsPID1OfARealGuest(kernel: QemuGuest.Kernel) throws {
        let t0 = QemuGuest.now()
        let guest = try QemuGuest.Boot(transport: "serial:/dev/ttyS1", kernel: kernel)
        let sock = guest.socket

        // QEMU listens on the socket at once; speak once the agent's line is raw (a serial line
        // has no connect: bytes sent earlier would meet the tty's echo).
        var fd: Int32 = -1
        for _ in 0..<500 where fd < 0 {
            fd = (try? UnixSocket.connect(sock)) ?? -1
            if fd < 0 { usleep(20_000) }
        }
        try #require(fd >= 0, "QEMU did not open \(sock)")
        var serving = false
        for _ in 0..<1200 where !serving {
            serving = guest.consoleText.contains("brig-agent: serving on /dev/ttyS1")
            if !serving { usleep(50_000) }
        }
        try #require(serving, "the agent did not come up within 60 s")
        let client = try AgentClient(fd: fd)
        let ready = QemuGuest.now()

        // A container on the virtio-blk ext4 disk, with the guest's PID namespace shared so that
        // the last exec can ask PID 1 to power off.
        var spec = DefaultSpec.make()
        spec.process?.terminal = false
        spec.process?.args = ["sh", "-c", "echo hello from the guest; uname -r; exit 3"]
        spec.root = Root(path: "rootfs", readonly: false)
        spec.hostname = "guestbox"
        spec.linux?.namespaces?.removeAll { $0.type == "pid" }
        _ = try client.create(AgentCreate(id: "c1", spec: spec, rootfs: .block(device: "/dev/vda", fstype: "ext4")))
        try client.start(id: "c1")
        let (status, out) = try relay(client)
        #expect(status == 3)
        #expect(out == "hello from the guest\n\(kernel.release)\n")
        #expect(try client.state(id: "c1").exitStatus == 3)
        try client.delete(id: "c1", force: false)

        spec.process?.args = ["sh", "-c", "touch /ready; exec sleep 60"]
        _ = try client.create(AgentCreate(id: "c2", spec: spec, rootfs: .block(device: "/dev/vda", fstype: "ext4")))
        try client.start(id: "c2")
        var process = spec.process!
        process.args = ["sh", "-c", "hostname; cat /proc/1/comm; exit 5"]
        _ = try client.exec(id: "c2", execID: "e1", process: process)
        let (execStatus, execOut) = try relay(client)
        #expect(execStatus == 5)
        #expect(execOut == "guestbox\ninit\n")
        let commands = QemuGuest.now()

        // Shut down: SIGTERM to the guest's PID 1 reaches the agent, which dies of it; PID 1 then
        // writes its status (143) to the exit port, which QEMU's isa-debug-exit turns into
        // exit code (143 << 1 | 1) & 0xff.
        process.args = ["kill", "-TERM", "1"]
        _ = try? client.exec(id: "c2", execID: "off", process: process)
        let qemuStatus = try guest.wait()
        let stopped = Spawn.Exit.exited((143 << 1 | 1) & 0xff)
        #expect(qemuStatus == stopped, "QEMU did not stop with the agent's status")
        let end = QemuGuest.now()

        let log = guest.consoleText
        #expect(log.contains("brig-agent: pid 1, /proc mounted before the Swift runtime started"))
        #expect(log.contains("moved the initramfs into a tmpfs root"))
        if kernel.modules {
            #expect(log.contains("loaded modules: ") && log.contains("virtio_blk"))
        } else {
            // Built in: the disk and the second UART were there without any module.
            #expect(!log.contains("loaded modules: "))
            #expect(log.contains("virtio_blk virtio0: [vda]"))
        }
        #expect(log.contains("bring-up done: mounted /sys /dev /dev/pts /dev/shm /run /tmp /sys/fs/cgroup"))
        #expect(log.contains("agent exited with status 143; powering off"))
        print("QEMU guest (\(kernel.name) kernel): agent ready \(secs(ready - t0)) s after launch, containers \(secs(commands - ready)) s, "
              + "power-off \(secs(end - commands)) s, total \(secs(end - t0)) s")
        if qemuStatus != stopped { print("guest console:\n" + log.suffix(3000)) }
    }

    /// A transport that cannot open: bring-up still completes, the agent exits 1, and PID 1
    /// hands that status to the host and stops the VM.
    @Test func agentFailureStopsTheGuestWithItsStatus() throws {
        let guest = try QemuGuest.Boot(transport: "serial:/dev/nonexistent", kernel: QemuGuest.kernels[0])
        let status = try guest.wait(timeout: 120)
        let log = guest.consoleText
        #expect(status == .exited((1 << 1 | 1) & 0xff), "console:\n\(log.suffix(2000))")
        #expect(log.contains("bring-up done"))
        #expect(log.contains("open /dev/nonexistent"))
        #expect(log.contains("agent exited with status 1; powering off"))
        // The line ends with the guest's uptime (benchmarks split a boot's time with it): more
        // than 0 ms, since the kernel, the agent's bring-up and its failure came before.
        let uptime = log.split(separator: "\n").first { $0.contains("powering off, guest uptime ") }
            .flatMap { $0.split(separator: " ").dropLast().last }.flatMap { Int($0) }
        #expect((uptime ?? 0) > 0, "no guest uptime on the power-off line")
    }

    func secs(_ s: Double) -> String { "\(Int(s))." + "\(Int(s * 10) % 10)" }

    /// Relays the attached process's output; returns (status, stdout+stderr).
    func relay(_ c: AgentClient) throws -> (Int32, String) {
        let (r, w) = try Files.pipe()
        let status = try c.relay(stdin: -1, stdout: w, stderr: w)
        close(w)
        defer { close(r) }
        return (status, String(decoding: try Files.read(fd: r), as: UTF8.self))
    }
}
