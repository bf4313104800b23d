import BrigLinux
import BrigOCI
import Glibc
import Testing

@Suite("terminals", .enabled(if: Harness.isRoot, "needs root"))
struct TerminalTests {
    /// `create --console-socket`: brig connects, sends the pty master with SCM_RIGHTS; the
    /// container's stdio is the slave, it is a tty, and /dev/console is the same pty.
    @Test func consoleSocketReceivesPtyMaster() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["sh", "-c", "tty; test -t 0 && echo stdin-is-tty; stty size; read line; echo got:$line"])
        s.process?.terminal = true
        s.process?.consoleSize = Box(height: 33, width: 101)
        try h.write(s)
        let sockPath = h.dir + "/console.sock"
        let listener = try UnixSocket.listen(sockPath)
        defer { close(listener) }
        let id = Harness.uniqueID("tty")
        var o = Spawn.Options(path: Harness.binary, args: [Harness.binary, "--root", h.root, "create", "--bundle", h.bundle,
                                                            "--console-socket", sockPath, id], env: [])
        o.fds = []
        let pid = try Spawn.spawn(o)
        let conn = accept(listener, nil, nil)
        #expect(conn >= 0)
        let (master, name) = try UnixSocket.receiveFD(conn)
        close(conn)
        #expect(master >= 0)
        #expect(name == "/dev/ptmx")
        #expect(try Spawn.wait(pid) == .exited(0))
        #expect(h.brig(["start", id]).code == 0)
        try Files.writeAll(fd: master, Array("hello\n".utf8))
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while !String(decoding: out, as: UTF8.self).contains("got:") || !String(decoding: out, as: UTF8.self).hasSuffix("\n") {
            var p = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 5000) <= 0 { break }
            let n = buf.withUnsafeMutableBytes { read(master, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        close(master)
        let text = String(decoding: out, as: UTF8.self).split(separator: "\r\n").map(String.init)
        // The pty echoes our input, possibly before the shell's first line: check membership.
        #expect(text.contains { $0.hasPrefix("/dev/pts/") }, "\(text)")
        #expect(text.contains("stdin-is-tty"))
        #expect(text.contains("33 101"))
        #expect(text.contains("got:hello"))
        _ = h.brig(["delete", "--force", id])
        h.assertClean(id)
    }

    @Test func runWithTerminalProxiesWithoutConsoleSocket() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["sh", "-c", "test -t 1 && echo tty-out; exit 5"])
        s.process?.terminal = true
        let id = Harness.uniqueID("ttyrun")
        let r = try h.run(s, id: id)
        #expect(r.code == 5)
        #expect(r.out.contains("tty-out"))
        h.assertClean(id)
    }

    @Test func terminalFlagsMustAgree() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["true"])
        s.process?.terminal = true
        try h.write(s)
        let id = Harness.uniqueID("ttyflags")
        #expect(h.brig(["create", "--bundle", h.bundle, id]).err.contains("console socket"))
        s.process?.terminal = false
        try h.write(s)
        #expect(h.brig(["create", "--bundle", h.bundle, "--console-socket", "/nonexistent", id]).err.contains("console socket"))
        h.assertClean(id)
    }
}
