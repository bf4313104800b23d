import BrigLinux
import FoundationEssentials
import Glibc
import Testing

/// The VMM jail (Sources/VMM/Machine/VMMJail.swift): `brig vm jail-check` confines itself as the
/// microvm monitor does, then tries syscalls the allowlist denies and ones the VMM needs.
@Suite(.enabled(if: Harness.isRoot))
struct VMMJailTests {
    @Test func forbiddenSyscallsFailOrKillButTheVMMsOwnStillWork() throws {
        var own = stat()
        #expect(stat("/proc/self/ns/net", &own) == 0)
        let r = Harness.exec([Harness.binary, "vm", "jail-check", "socket-inet", "tiocsti", "socket-unix", "pty", "netns"])
        #expect(r.code == 0, "\(r.err)")
        let lines = r.out.split(separator: "\n").map(String.init)
        #expect(lines.contains("socket-inet errno \(EPERM)"), "\(r.out)")
        #expect(lines.contains("tiocsti errno \(EPERM)"), "\(r.out)")
        #expect(lines.contains("socket-unix ok"), "\(r.out)")
        #expect(lines.contains("pty ok"), "\(r.out)")
        // A network namespace of its own.
        let netns = lines.first { $0.hasPrefix("netns ") }.flatMap { UInt($0.dropFirst(6)) }
        #expect(netns != nil && netns != UInt(own.st_ino), "\(r.out)")
    }

    @Test func execveKillsTheProcess() throws {
        let r = Harness.exec([Harness.binary, "vm", "jail-check", "execve"])
        #expect(r.out.contains("execve trying"), "\(r.out) \(r.err)")
        #expect(r.code == 128 + SIGSYS, "exit \(r.code): \(r.out) \(r.err)")
        #expect(!r.out.contains("execve ok") && !r.out.contains("execve errno"))
    }
}

/// `brig vm boot --seccomp` with brig's vsock test guest: the confined VMM still boots, serves
/// a host-initiated vsock connection (CONNECT 1024, echo) and a guest-initiated one (to
/// `<uds>_1025`), and the guest powers off with its status.
@Suite(.enabled(if: Harness.isRoot && access("/dev/kvm", R_OK | W_OK) == 0 && access("/usr/bin/gcc", X_OK) == 0))
struct VMMJailBootTests {
    @Test func confinedVMMServesVsockBothWays() throws {
        var template = Array("/tmp/brig-jail-XXXXXX".utf8CString)
        let dir = try #require(mkdtemp(&template).map { String(cString: $0) })
        defer { _ = Harness.exec(["/bin/rm", "-rf", dir]) }
        let guest = dir + "/vsock-guest.elf"
        let b = Harness.exec(["/bin/sh", Harness.packageRoot + "/Tests/VMM/Guests/build.sh", guest, "vsock-guest.c"])
        try #require(b.code == 0, "\(b.err)")
        let uds = dir + "/v.sock"
        let listener = try UnixSocket.listen(uds + "_1025")
        defer { close(listener) }
        let serial = dir + "/serial.log"
        let pid = try Spawn.spawn(Spawn.Options(path: Harness.binary, args: [
            Harness.binary, "vm", "boot", "--kernel", guest, "--mem", "32M", "--cmdline", "console=ttyS0 exit=7",
            "--vsock-uds", uds, "--timeout", "30", "--serial-out", serial, "--seccomp"], env: ["PATH=/usr/bin:/bin"]))
        var conn: Int32 = -1
        for _ in 0..<400 where conn < 0 {
            conn = (try? UnixSocket.connect(uds)) ?? -1
            if conn < 0 { usleep(10_000) }
        }
        try #require(conn >= 0, "no vsock socket at \(uds)")
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        try Files.writeAll(fd: conn, Array("CONNECT 1024\n".utf8))
        #expect(Self.read(conn, until: "\n").hasPrefix("OK "))
        // The VMM process (every thread) runs filtered, with no_new_privs, in its own netns.
        let status = String(decoding: (try? Files.read("/proc/\(pid)/status")) ?? [], as: UTF8.self)
        #expect(status.contains("NoNewPrivs:\t1") && status.contains("Seccomp:\t2"), "\(status)")
        for task in (try? Files.list("/proc/\(pid)/task")) ?? [] {
            let t = String(decoding: (try? Files.read("/proc/\(pid)/task/\(task)/status")) ?? [], as: UTF8.self)
            #expect(t.contains("Seccomp:\t2"), "thread \(task) unfiltered")
        }
        var mine = stat(), its = stat()
        #expect(stat("/proc/self/ns/net", &mine) == 0 && stat("/proc/\(pid)/ns/net", &its) == 0)
        #expect(mine.st_ino != its.st_ino, "the VMM shares the test's network namespace")
        try Files.writeAll(fd: conn, Array("ping".utf8))
        #expect(Self.read(conn, until: "echo: ping") == "echo: ping")
        close(conn)
        let a = accept(listener, nil, nil)
        #expect(a >= 0)
        setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        #expect(Self.read(a, until: "never").hasPrefix("hello from guest"))
        close(a)
        let exit = try Spawn.wait(pid, timeout: 30)
        let out = String(decoding: (try? Files.read(serial)) ?? [], as: UTF8.self)
        #expect(exit == .exited(7), "serial:\n\(out)")
        #expect(out.contains("virtio-vsock ok"), "serial:\n\(out)")
        #expect(!Files.exists(uds), "vsock socket left behind")
    }

    static func read(_ fd: Int32, until stop: String) -> String {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 256)
        while !String(decoding: out, as: UTF8.self).contains(stop) {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
