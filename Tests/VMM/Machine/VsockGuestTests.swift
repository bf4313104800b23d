import Testing
import Glibc
import Synchronization
import BrigLinux
@testable import BrigVMM
@testable import BrigDevices

func udsConnect(_ path: String) -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard VsockMuxer.withAddress(path, { connect(fd, $0, $1) }) == 0 else { close(fd); return -1 }
    var tv = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    return fd
}

/// Reads until `stop` bytes are seen, EOF, or the receive timeout.
func readUntil(_ fd: Int32, _ stop: String) -> String {
    var out: [UInt8] = []
    var b = [UInt8](repeating: 0, count: 256)
    while !String(decoding: out, as: UTF8.self).contains(stop) {
        let n = read(fd, &b, b.count)
        guard n > 0 else { break }
        out += b[0..<n]
    }
    return String(decoding: out, as: UTF8.self)
}

/// Builds the vsock test guest into a fresh temp dir; returns (dir, kernel, uds path).
func vsockGuest() throws -> (dir: String, kernel: String, uds: String) {
    let dir = tempDir()
    let kernel = dir + "/vsock-guest.elf"
    try #require(shell("sh '\(repoRoot)/Tests/VMM/Guests/build.sh' '\(kernel)' vsock-guest.c") == 0, "building the vsock guest failed")
    return (dir, kernel, dir + "/v.sock")
}

func vsockVM(_ kernel: String, uds: String, serialFD: Int32) throws -> VirtualMachine {
    var c = VMConfig(kernelPath: kernel)
    c.memoryBytes = 32 << 20; c.cmdline = "console=ttyS0 exit=7"; c.timeoutSeconds = 60
    c.vsock = VsockConfig(guestCID: 5, udsPath: uds)
    c.serialFD = serialFD
    return try VirtualMachine(c)
}

extension KVMTests {
@Suite(.enabled(if: kvmUsable, kvmReason))
struct VsockGuestTests {
    @Test func guestConnectToAHostPortNobodyListensOnIsReset() throws {
        let (dir, kernel, uds) = try vsockGuest()
        defer { _ = shell("rm -rf '\(dir)'") }
        let log = dir + "/serial.log"
        let sfd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(sfd) }
        let reason = try vsockVM(kernel, uds: uds, serialFD: sfd).run()
        let out = String(decoding: readAll(log), as: UTF8.self)
        #expect(reason == .powerOff(status: 24) && out.contains("connect to host port 1025 refused"), "serial:\n\(out)")
    }

    @Test func stoppingTheVMEndsTheEventLoopAndRemovesTheSocket() throws {
        let (dir, kernel, uds) = try vsockGuest()
        defer { _ = shell("rm -rf '\(dir)'") }
        let l = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #expect(VsockMuxer.withAddress(uds + "_1025") { bind(l, $0, $1) } == 0 && listen(l, 4) == 0)
        defer { close(l) }
        let null = open("/dev/null", O_WRONLY)
        defer { close(null) }
        let vm = try vsockVM(kernel, uds: uds, serialFD: null)
        let result = Mutex<StopReason?>(nil)
        let t = Threads.spawn { let r = vm.run(); result.withLock { $0 = r } }
        // The guest's own connection arrives; then it waits for a host client that never comes.
        let a = accept(l, nil, nil)
        #expect(a >= 0)
        defer { close(a) }
        vm.requestStop(.vmmError("test stop"))
        // Its connection ends as the VM stops, possibly before run() has returned the reason;
        // the VM already knows it then (the microvm monitor reads it there: MonitorStopTests).
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var b = [UInt8](repeating: 0, count: 64)
        #expect(read(a, &b, 64) == 0)
        #expect(vm.stopReason == .vmmError("test stop"))
        pthread_join(t, nil)
        #expect(result.withLock { $0 } == .vmmError("test stop"))
        var st = stat()
        #expect(lstat(uds, &st) != 0)
        #expect(udsConnect(uds) == -1)
    }

    @Test func hostAndGuestTalkOverVsock() throws {
        let (dir, kernel, uds) = try vsockGuest()
        defer { _ = shell("rm -rf '\(dir)'") }
        let log = dir + "/serial.log"
        // The guest connects to host port 1025 as soon as it runs: listen there first.
        let l = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #expect(VsockMuxer.withAddress(uds + "_1025") { bind(l, $0, $1) } == 0 && listen(l, 4) == 0)
        defer { close(l) }

        let sfd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(sfd) }
        let vm = try vsockVM(kernel, uds: uds, serialFD: sfd)
        #expect(vm.cmdline.text.contains("virtio_mmio.device=4K@0xd0000000:5"))
        #expect(vm.cmdline.text.hasSuffix(" virtio_mmio.device=4K@0xd0001000:6 virtio_mmio.device=4K@0xd0002000:7"))   // virtio-rng, the slot after vsock, then virtio-balloon
        let result = Mutex<StopReason?>(nil)
        let t = Threads.spawn { let r = vm.run(); result.withLock { $0 = r } }

        // Host-initiated: CONNECT 1024, OK <port>, echo round trip, then close.
        let cl = udsConnect(uds)
        #expect(cl >= 0)
        let msg = "CONNECT 1024\n"
        #expect(write(cl, msg, msg.utf8.count) == msg.utf8.count)
        let ok = readUntil(cl, "\n")
        #expect(ok.hasPrefix("OK ") && UInt32(ok.dropFirst(3).dropLast()) != nil, "got \(ok)")
        #expect(write(cl, "ping", 4) == 4)
        #expect(readUntil(cl, "echo: ping") == "echo: ping")
        shutdown(cl, Int32(SHUT_WR))
        #expect(readUntil(cl, "never") == "") // guest answered our SHUTDOWN with RST: socket closed
        close(cl)

        // Guest-initiated: the guest's connection to host port 1025 arrived at <uds>_1025.
        let a = accept(l, nil, nil)
        #expect(a >= 0)
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        #expect(readUntil(a, "never") == "hello from guest 0x5\n")
        close(a)

        pthread_join(t, nil)
        let out = String(decoding: readAll(log), as: UTF8.self)
        #expect(result.withLock { $0 } == .powerOff(status: 7), "serial:\n\(out)")
        #expect(out.contains("virtio-vsock ok"))
        var st = stat()
        #expect(lstat(uds, &st) != 0) // listening socket removed at teardown
    }
}
}
