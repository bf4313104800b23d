import BrigAgent
import BrigAgentProtocol
import BrigCore
import BrigLinux
import BrigOCI
import FoundationEssentials  // the tests only: the wire JSON before issue 17
import Glibc
import Testing

@Suite struct ProtocolTests {
    @Test func frameRoundTripsWhenFedByteByByte() throws {
        let frames = [Frame(.request, channel: 7, Array("{\"a\":1}".utf8)), Frame(.stdout, channel: 0xdead_beef, [0, 1, 255]),
                      Frame(.closeStdin, channel: 3)]
        var d = FrameDecoder()
        var out: [Frame] = []
        for byte in frames.flatMap({ $0.encoded() }) {
            d.feed([byte])
            while let f = try d.next() { out.append(f) }
        }
        #expect(out == frames)
        #expect(d.buffered == 0)
    }

    @Test func headerIsLengthKindChannelBigEndian() {
        #expect(Frame(.stdin, channel: 0x0102_0304, [9, 9]).encoded() == [0, 0, 0, 2, 4, 1, 2, 3, 4, 9, 9])
    }

    @Test func oversizedFrameIsAnErrorBeforeItsPayloadArrives() {
        var d = FrameDecoder()
        let n = UInt32(AgentProtocol.maxPayload + 1)
        d.feed([UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff), 2, 0, 0, 0, 1])
        #expect(throws: AgentError.self) { try d.next() }
        do { _ = try d.next() } catch { #expect(error.code == .protocolError) }
    }

    @Test func unknownKindIsAnError() {
        var d = FrameDecoder()
        d.feed([0, 0, 0, 0, 200, 0, 0, 0, 0])
        do { _ = try d.next(); Issue.record("decoded a frame of kind 200") } catch { #expect(error.code == .protocolError) }
    }

    @Test func garbageJSONIsAProtocolError() {
        do { _ = try AgentCoding.decode(AgentRequest.self, Array("{\"nope\":".utf8)); Issue.record("decoded garbage") } catch {
            #expect(error.code == .protocolError)
        }
    }

    static var requests: [AgentRequest] {
        var spec = DefaultSpec.make()
        spec.process?.args = ["echo", "hi"]
        return [
            .create(AgentCreate(id: "c1", spec: spec, rootfs: .block(device: "/dev/vda", fstype: "ext4"), terminal: true)),
            .exec(id: "c1", execID: "e1", process: spec.process!, terminal: false),
            .exec(id: "c1", execID: "e2", process: spec.process!, terminal: false, subCgroups: ["": "sub", "memory": "m/n"]),
            .kill(id: "c1", execID: nil, signal: 15, all: true),
            .resize(id: "c1", execID: "e1", rows: 40, cols: 100),
            .delete(id: "c1", force: true),
            .network(AgentNetwork(mac: "02:00:00:00:00:01", mtu: 1500, addresses: [.init("10.0.0.2", prefixLength: 24)],
                                  routes: [.init("0.0.0.0/0", gateway: "10.0.0.1"), .init("fd00::/64", metric: 256)])),
        ]
    }

    static var responses: [AgentResponse] {
        var stats = AgentStats(cgroup: CgroupStats(), oomKills: 2)
        stats.cgroup.memory.usage.usage = 1 << 40
        var r = AgentResponse()
        r.pid = 7; r.status = 137; r.pids = [1, 2]; r.stats = stats
        r.state = AgentState(id: "c1", status: .stopped, pid: 0, exitStatus: 137)
        return [r, .failure(AgentError(.config, "process.args: \"/bin/x\" not found\n")), AgentResponse()]
    }

    @Test func requestsRoundTripThroughJSON() throws {
        for r in Self.requests { #expect(try AgentCoding.decode(AgentRequest.self, try AgentCoding.encode(r)) == r) }
        for r in Self.responses { #expect(try AgentCoding.decode(AgentResponse.self, try AgentCoding.encode(r)) == r) }
    }

    /// The wire JSON is BrigJSON's since issue 17; before, both ends used Foundation's coders.
    /// Either peer reads the other's (a guest image built before the change still talks to the
    /// host, and the other way round).
    @Test func wireJSONIsFoundationCompatible() throws {
        func both<T: Codable & Equatable>(_ value: T) throws {
            #expect(try JSONDecoder().decode(T.self, from: Data(try AgentCoding.encode(value))) == value)
            #expect(try AgentCoding.decode(T.self, Array(try JSONEncoder().encode(value))) == value)
        }
        for r in Self.requests { try both(r) }
        for r in Self.responses { try both(r) }
        try both(AgentHello(version: 3, error: "x"))
        try both(AgentExit(status: 1))
        try both(AgentHooksDue(pid: 9))
        try both(AgentHooksDone(error: "hook #0 failed"))
    }

    /// `exec --cgroup`'s sub-cgroups travel with the exec request; one without them (an older
    /// client's) still decodes, with none.
    @Test func execWithoutSubCgroupsDecodes() throws {
        var spec = DefaultSpec.make()
        spec.process?.args = ["true"]
        var bytes = try AgentCoding.encode(AgentRequest.exec(id: "c1", execID: "e1", process: spec.process!, terminal: false,
                                                               subCgroups: ["": "sub"]))
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("\"subCgroups\""))
        // The encoder's key order is not fixed: the field may come first or after another.
        bytes = Array(text.replacing(#","subCgroups":{"":"sub"}"#, with: "").replacing(#""subCgroups":{"":"sub"},"#, with: "").utf8)
        #expect(!String(decoding: bytes, as: UTF8.self).contains("subCgroups"))
        #expect(try AgentCoding.decode(AgentRequest.self, bytes) == .exec(id: "c1", execID: "e1", process: spec.process!, terminal: false))
    }

    @Test func truncatedStreamIsAConnectionError() throws {
        let (r, w) = try Files.pipe()
        defer { close(r) }
        let whole = Frame(.response, channel: 1, Array("{}".utf8)).encoded()
        try Files.writeAll(fd: w, Array(whole.dropLast()))
        close(w)
        do { _ = try FrameStream(fd: r).receive(); Issue.record("received a truncated frame") } catch {
            #expect(error.code == .connection)
            #expect(error.message.contains("middle of a frame"))
        }
    }

    @Test func clientRejectsAnAgentOfAnotherVersion() throws {
        let (mine, theirs) = try streamPair()
        defer { close(theirs) }
        try Files.writeAll(fd: theirs, Frame(.hello, try AgentCoding.encode(AgentHello(version: 99))).encoded())
        do { _ = try AgentClient(fd: mine); Issue.record("handshake with version 99 succeeded") } catch {
            #expect(error.code == .versionMismatch)
            #expect(error.message.contains("99"))
        }
    }

    /// The agent's end; the host's (code → kind) is tested in BrigMicroVMTests.
    @Test func runtimeErrorKindsMapToErrorCodes() {
        #expect(AgentError(RuntimeError(.config, "x")).code == .config)
        #expect(AgentError(RuntimeError(.internalError, "y")) == AgentError(.internalError, "y"))
    }
}

func streamPair() throws -> (Int32, Int32) {
    var fds: [Int32] = [-1, -1]
    _ = try sys("socketpair") { socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) }
    return (fds[0], fds[1])
}
