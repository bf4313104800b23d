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
        let id = Harness.uniqueID("tty")
        let (master, name, exit) = try h.createWithConsoleSocket(id)
        #expect(master >= 0)
        #expect(name == "/dev/ptmx")
        #expect(exit == .exited(0))
        #expect(h.brig(["start", id]).code == 0)
        try Files.writeAll(fd: master, Array("hello\n".utf8))
        let out = Harness.readPTY(master) { $0.contains("got:") && $0.hasSuffix("\n") }
        close(master)
        let text = out.split(separator: "\r\n").map(String.init)
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
