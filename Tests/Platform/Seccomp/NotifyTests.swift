import BrigCore
import BrigLinux
import BrigOCI
import BrigSeccomp
import CBrigSeccompShim
import FoundationEssentials
import Glibc
import Testing

/// A Unix stream socket the test listens on, playing the seccomp agent.
struct AgentSocket {
    let fd: Int32
    let path: String

    init(path: String) {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        precondition(fd >= 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        precondition(rc == 0 && listen(fd, 4) == 0, "bind/listen \(path)")
    }

    /// Waits up to `seconds` for `fd` to become readable.
    static func wait(_ fd: Int32, seconds: Int32 = 20) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, seconds * 1000) == 1
    }

    /// Accepts the runtime's connection and receives the state JSON with the notify fd.
    func receive() -> (state: [UInt8], notifyFD: Int32)? {
        guard Self.wait(fd) else { return nil }
        let conn = accept(fd, nil, nil)  // (Glibc here lacks accept4)
        guard conn >= 0 else { return nil }
        _ = fcntl(conn, F_SETFD, FD_CLOEXEC)
        defer { close(conn) }
        var state: [UInt8] = []
        var notifyFD: Int32 = -1
        while Self.wait(conn, seconds: 5) {
            guard let (received, bytes) = try? UnixSocket.receiveWithFD(conn, max: 65536) else { break }
            if received >= 0 { notifyFD = received }
            if bytes.isEmpty { break }
            state += bytes
        }
        return notifyFD >= 0 ? (state, notifyFD) : nil
    }

    func closeSocket() { close(fd) }
}

@Suite struct NotifyTests {
    static func profile(listener: String, flags: String = "") -> String {
        """
        {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "\(listener)", "listenerMetadata": "agent-meta"\(flags),
         "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}, {"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3}]}
        """
    }

    enum Answer { case errno(Int32), proceed }

    /// Spawns the probe doing mkdir under a NOTIFY profile, acts as the agent, answers, and returns
    /// the probe's stdout.
    func notifiedMkdir(answer: Answer, flags: String = "", in dir: String) throws -> String? {
        let agent = AgentSocket(path: dir + "/agent.sock")
        defer { agent.closeSocket() }
        guard let probe = spawnProbe(profile: Self.profile(listener: agent.path, flags: flags),
                                     ["mkdir", "s:\(dir)/made", "493"], in: dir) else { return nil }
        guard let (bytes, notifyFD) = agent.receive() else {
            let result = probe.finish()
            Issue.record("no notify fd arrived; probe exit \(String(describing: result.exitCode)): \(result.stderr)")
            return nil
        }
        defer { close(notifyFD) }

        let state = try JSONDecoder().decode(ContainerProcessState.self, from: Data(bytes))
        #expect(state.fds == ["seccompFd"])
        #expect(state.pid == probe.pid)
        #expect(state.metadata == "agent-meta")
        #expect(state.state.status == .running && state.state.pid == probe.pid)
        #expect(state.ociVersion == Spec.version)
        let raw = String(decoding: bytes, as: UTF8.self)
        #expect(raw.contains(#""state":{"#) && raw.contains(#""fds":["seccompFd"]"#))

        #expect(AgentSocket.wait(notifyFD), "no notification")
        var id: UInt64 = 0, pid: UInt32 = 0, nr: Int32 = 0, arg0: UInt64 = 0
        #expect(brig_sc_notif_recv(notifyFD, &id, &pid, &nr, &arg0) == 0, "NOTIF_RECV: \(errno)")
        #expect(nr == 83, "mkdir on x86_64")
        #expect(pid == UInt32(probe.pid))
        switch answer {
        case .errno(let code): #expect(brig_sc_notif_send(notifyFD, id, -code, 0, 0) == 0)
        case .proceed: #expect(brig_sc_notif_send(notifyFD, id, 0, 0, 1) == 0)
        }
        let result = probe.finish()
        #expect(result.exitCode == 0, "\(result.stderr)")
        return result.stdout
    }

    @Test func agentAnswersWithAnErrno() throws {
        let dir = makeTempDir()
        defer { removeTree(dir) }
        #expect(try notifiedMkdir(answer: .errno(ENOSPC), in: dir) == "errno \(ENOSPC)\n")
        #expect(access(dir + "/made", F_OK) != 0)
    }

    @Test func agentLetsTheSyscallContinue() throws {
        let dir = makeTempDir()
        defer { removeTree(dir) }
        #expect(try notifiedMkdir(answer: .proceed, in: dir) == "ok 0\n")
        #expect(access(dir + "/made", F_OK) == 0)
    }

    @Test func waitKillableRecvLoadsThroughTheKernelDirectly() throws {
        let dir = makeTempDir()
        defer { removeTree(dir) }
        let flags = #", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_LOG"]"#
        #expect(try notifiedMkdir(answer: .errno(EROFS), flags: flags, in: dir) == "errno \(EROFS)\n")
    }

    @Test func missingListenerIsAClearError() throws {
        let dir = makeTempDir()
        defer { removeTree(dir) }
        let path = dir + "/nobody.sock"
        let payload = ContainerProcessState.json(
            state: ContainerState(id: "c1", status: .creating, pid: 42, bundle: "/b", rootfs: "/b/rootfs", created: "now"),
            metadata: nil)
        #expect(!String(decoding: payload, as: UTF8.self).contains("metadata"))
        do {
            try SeccompListener.send(notifyFD: 0, listenerPath: path, state: payload)
            Issue.record("send to a missing listener succeeded")
        } catch {
            #expect(error.errno == ENOENT)
            #expect(error.description.contains(path))
        }
        // The probe (standing in for the runtime) fails the same way, naming the path.
        guard let result = runProbe(profile: Self.profile(listener: path), ["getppid"]) else { return }
        #expect(result.exitCode == 2)
        #expect(result.stderr.contains(path))
    }
}
