import BrigAgentGuest
import Testing

@Suite struct TransportTests {
    @Test func defaultsToVsock1024() throws {
        #expect(try Transport.parse(nil) == .vsock(port: 1024))
        #expect(try Transport.parse("vsock") == .vsock(port: 1024))
        #expect(try Transport.parse("vsock:5000") == .vsock(port: 5000))
        #expect(try Transport.parse("serial:/dev/ttyS1") == .serial(path: "/dev/ttyS1"))
        #expect(throws: (any Error).self) { try Transport.parse("serial:ttyS1") }
        #expect(throws: (any Error).self) { try Transport.parse("tcp:1") }
    }

    @Test func cmdlineWords() {
        let c = GuestInit.parseCmdline("console=ttyS0 quiet brig.transport=serial:/dev/ttyS1 a=b=c\n")
        #expect(c["console"] == "ttyS0")
        #expect(c["quiet"] == "")
        #expect(c["brig.transport"] == "serial:/dev/ttyS1")
        #expect(c["a"] == "b=c")
    }

    @Test func noModuleListLoadsNothing() throws {
        #expect(try GuestInit.loadModules(list: "/nonexistent/brig.order") == [])
    }
}
