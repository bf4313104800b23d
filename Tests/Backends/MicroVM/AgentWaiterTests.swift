import BrigAgentProtocol
import BrigCore
import BrigLinux
import Glibc
import Testing
@testable import BrigMicroVM

/// The wait for a guest agent without a VM: an injected connector plays the guest (nothing
/// listening yet, a reset during the hello, a silent peer, another protocol version), a fake
/// clock advances with every backoff sleep.
@Suite struct AgentWaiterTests {
    /// One end of a socketpair; the other is what the "agent" does: answer the hello with
    /// `version`, hang up without a word (`nil`), or stay silent (kept open in `silent`).
    final class Peers {
        var keep: [Int32] = []
        deinit { keep.forEach { close($0) } }

        /// Whether the client's end of this peer is closed: reading drains its hello, then EOF.
        static func clientClosed(_ fd: Int32) -> Bool {
            var buf = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = recv(fd, &buf, buf.count, Int32(MSG_DONTWAIT))
                if n == 0 { return true }
                if n < 0 { return false }
            }
        }

        func agent(version: Int?, silent: Bool = false) -> Int32 {
            var fds: [Int32] = [-1, -1]
            precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0)
            if silent {
                keep.append(fds[1])
            } else if let version {
                // The socket buffers the reply, so the client finds it after sending its hello.
                let hello = Frame(.hello, try! AgentCoding.encode(AgentHello(version: version)))
                try! Files.writeAll(fd: fds[1], hello.encoded())
                keep.append(fds[1])
            } else {
                // Reading side stays open (no SIGPIPE for the client's hello), but no reply comes.
                shutdown(fds[1], Int32(SHUT_WR))
                keep.append(fds[1])
            }
            return fds[0]
        }
    }

    /// A fake clock that only moves when the waiter sleeps; records the sleeps.
    final class Clock {
        var t = 100.0
        var sleeps: [Double] = []
    }

    func waiter(timeout: Double, clock: Clock, _ connect: @escaping (Double) throws(ConnectFailure) -> Int32) -> AgentWaiter {
        var w = AgentWaiter(timeout: timeout, connect: connect)
        w.now = { clock.t }
        w.sleep = { clock.sleeps.append($0); clock.t += $0 }
        w.hint = "; raise it"
        return w
    }

    static let notYet = ConnectFailure("vsock CONNECT 1024 via x: the VMM closed the connection (no guest listener)", retryable: true)

    @Test func retriesUntilTheAgentAnswersWithGrowingBackoff() throws {
        let peers = Peers(), clock = Clock()
        var calls = 0
        var w = waiter(timeout: 60, clock: clock) { (_: Double) throws(ConnectFailure) -> Int32 in
            calls += 1
            if calls <= 12 { throw Self.notYet }
            return peers.agent(version: AgentProtocol.version)
        }
        _ = try w.session()
        #expect(w.attempts == 13 && calls == 13)
        #expect(clock.sleeps.count == 12)
        #expect(clock.sleeps.first == w.firstDelay)
        // Doubling, then capped.
        for (a, b) in zip(clock.sleeps, clock.sleeps.dropFirst()) { #expect(b == min(a * 2, w.maxDelay)) }
        #expect(clock.sleeps.last == w.maxDelay)
    }

    @Test func aResetDuringTheHelloIsRetried() throws {
        let peers = Peers(), clock = Clock()
        var calls = 0
        var w = waiter(timeout: 60, clock: clock) { (_: Double) throws(ConnectFailure) -> Int32 in
            calls += 1
            return peers.agent(version: calls < 3 ? nil : AgentProtocol.version)
        }
        _ = try w.session()
        #expect(w.attempts == 3)
    }

    @Test func givesUpAtTheDeadlineNamingItAndTheLastFailure() {
        let clock = Clock()
        var w = waiter(timeout: 5, clock: clock) { (_: Double) throws(ConnectFailure) -> Int32 in throw Self.notYet }
        #expect { try w.session() } throws: { e in
            let m = (e as? RuntimeError)?.message ?? ""
            return m.contains("no agent answered within 5 s") && m.contains("no guest listener") && m.hasSuffix("; raise it")
                && m.contains("attempts")
        }
        #expect(w.attempts > 10)
        // It slept until the deadline and not past it.
        #expect(abs(clock.sleeps.reduce(0, +) - 5) < 1e-9)
    }

    @Test func aFailureWaitingCannotCureEndsTheWaitAtOnce() {
        let clock = Clock()
        var w = waiter(timeout: 60, clock: clock) { (_: Double) throws(ConnectFailure) -> Int32 in
            throw ConnectFailure("vsock CONNECT 1024 via x: unexpected reply \"NO\"", retryable: false)
        }
        #expect { try w.session() } throws: { ($0 as? RuntimeError)?.message.contains("unexpected reply") == true }
        #expect(w.attempts == 1 && clock.sleeps.isEmpty)
    }

    @Test func anAgentOfAnotherProtocolVersionIsNamedAndNotRetried() {
        let peers = Peers(), clock = Clock()
        var w = waiter(timeout: 60, clock: clock) { (_: Double) throws(ConnectFailure) -> Int32 in peers.agent(version: 99) }
        #expect { try w.session() } throws: { e in
            let m = (e as? RuntimeError)?.message ?? ""
            return m.contains("another protocol version") && m.contains("99")
        }
        #expect(w.attempts == 1)
    }

    @Test func aGuestThatCannotComeUpAnyMoreEndsTheWait() {
        let clock = Clock()
        var w = waiter(timeout: 60, clock: clock) { (_: Double) throws(ConnectFailure) -> Int32 in throw Self.notYet }
        var asked = 0
        w.gone = { asked += 1; return asked >= 3 ? "the VM stopped (guest requested reset/shutdown)" : nil }
        #expect { try w.session() } throws: { e in
            let m = (e as? RuntimeError)?.message ?? ""
            return m.hasPrefix("the VM stopped (guest requested reset/shutdown) before its agent answered") && m.contains("no guest listener")
        }
        #expect(w.attempts == 3)
    }

    /// A peer that accepted but never says hello is given up on after the attempt's budget (at
    /// least a second) and retried; every failed attempt's descriptor is closed.
    @Test func aSilentPeerIsRetriedAndNothingLeaks() throws {
        let peers = Peers(), clock = Clock()
        var calls = 0
        var w = waiter(timeout: 60, clock: clock) { (_: Double) throws(ConnectFailure) -> Int32 in
            calls += 1
            switch calls {
            case 1: return peers.agent(version: nil, silent: true)
            case 2...5: return peers.agent(version: nil)
            default: return peers.agent(version: AgentProtocol.version)
            }
        }
        w.attemptTimeout = 0.1
        let session = try w.session()
        #expect(w.attempts == 6)
        // The failed attempts' ends are closed (their peers read EOF), the session's is open.
        #expect(peers.keep.map(Peers.clientClosed) == [true, true, true, true, true, false])
        _ = session
    }
}

/// One connection attempt over the real hybrid-vsock handshake, against a fake VMM on a Unix
/// socket that answers each CONNECT as scripted.
@Suite struct AgentEndpointTests {
    func vmm(_ replies: [String?]) throws -> (String, () -> Void) {
        let dir = "/tmp/brig-endpoint-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try Files.mkdirAll(dir)
        let path = dir + "/vsock.sock"
        let listener = try UnixSocket.listen(path)
        Threads.detach {
            for reply in replies {
                let fd = accept(listener, nil, nil)
                guard fd >= 0 else { return }
                let line = Files.readLine(fd: fd, max: 64)
                precondition(line.text == "CONNECT 1024")
                if let reply { try? Files.writeAll(fd: fd, Array(reply.utf8)); usleep(200_000) }
                close(fd)
            }
        }
        return (path, { close(listener); Files.removeAll(dir) })
    }

    @Test func eachReplyIsClassified() throws {
        let (path, done) = try vmm([nil, "NOPE\n", "OK 1073741824\n"])
        defer { done() }
        let e = AgentEndpoint.vsock(uds: path, port: AgentEndpoint.agentPort)
        // The VMM hangs up: the guest reset the connection, nobody listens yet.
        #expect { try e.connectOnce(timeout: 5) } throws: { ($0 as? ConnectFailure)?.retryable == true && "\($0)".contains("no guest listener") }
        #expect { try e.connectOnce(timeout: 5) } throws: { ($0 as? ConnectFailure)?.retryable == false && "\($0)".contains("unexpected reply") }
        let fd = try e.connectOnce(timeout: 5)
        #expect(fd >= 0)
        close(fd)
    }

    @Test func noSocketYetIsRetryableAndABadPathIsNot() {
        let missing = AgentEndpoint.vsock(uds: "/tmp/brig-no-such-dir-\(getpid())/vsock.sock", port: 1024)
        #expect { try missing.connectOnce(timeout: 1) } throws: { ($0 as? ConnectFailure)?.retryable == true }
        let notADirectory = AgentEndpoint.unix(path: "/etc/passwd/agent.sock")
        #expect { try notADirectory.connectOnce(timeout: 1) } throws: { ($0 as? ConnectFailure)?.retryable == false }
    }
}

@Suite struct MonitorReportTests {
    /// A guest console's CRLF lines must not cut the one-line report short (Swift's split on
    /// "\n" does not split "\r\n", a single Character).
    @Test func consoleLinesBecomeOneLine() {
        #expect(Monitor.oneLine("error x; guest console: [1] PCI\r\n[2] Kernel panic\r\n[3] end\n") ==
                "error x; guest console: [1] PCI  [2] Kernel panic  [3] end ")
        #expect(!Monitor.oneLine("a\r\nb\rc\nd").utf8.contains { $0 == 10 || $0 == 13 })
    }
}

/// The host's end of the error mapping; the agent's (kind → code) is tested in BrigAgentTests.
@Suite struct AgentErrorKindTests {
    @Test func errorCodesMapToRuntimeErrorKinds() {
        #expect(AgentError(.config, "x").kind == .config)
        #expect(AgentError(.connection, "x").kind == .system)
        #expect(AgentError(.versionMismatch, "x").kind == .internalError)
        #expect(AgentError(.notFound, "x").runtimeError.message == "x")
    }
}
