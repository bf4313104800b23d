import Testing
import Glibc
@testable import BrigVMM

/// KVM tests run only where /dev/kvm can be opened; otherwise Swift Testing reports them as
/// skipped with this reason (never silently).
let kvmUsable: Bool = {
    let fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)
    if fd >= 0 { close(fd); return true }
    return false
}()
let kvmReason: Comment = "needs an openable /dev/kvm (errno \(errno)); run as root on a KVM host"

let repoRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(4)                                    // Tests/VMM/Machine/GuestBootTests.swift
    return parts.joined(separator: "/")
}()

func shell(_ cmd: String) -> Int32 {
    let s = system(cmd)
    return s == -1 ? -1 : (s >> 8) & 0xFF
}

func tempDir() -> String {
    var t = Array("/tmp/brig-vmm-test-XXXXXX".utf8CString)
    return t.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}

func readAll(_ path: String) -> [UInt8] {
    let fd = open(path, O_RDONLY); guard fd >= 0 else { return [] }
    defer { close(fd) }
    var out: [UInt8] = [], buf = [UInt8](repeating: 0, count: 65536)
    while true { let n = read(fd, &buf, buf.count); if n <= 0 { break }; out += buf[0..<n] }
    return out
}

/// Open fds of this process that belong to a VM: /dev/kvm, kvm-vm, kvm-vcpu, or `path`.
/// (Counting all fds would race with other tests running in parallel.)
func vmFDs(disk path: String) -> [String] {
    guard let d = opendir("/proc/self/fd") else { return ["cannot read /proc/self/fd"] }
    defer { closedir(d) }
    var out: [String] = []
    while let e = readdir(d) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = readlink("/proc/self/fd/" + name, &buf, buf.count)
        guard n > 0 else { continue }
        let target = String(decoding: buf[0..<n], as: UTF8.self)
        if target.contains("kvm") || target == path { out.append(target) }
    }
    return out
}

/// KVM tests run one at a time so fd checks see only their own VM.
@Suite(.serialized) enum KVMTests {}

/// Builds the test guest (gcc) and a 1 MiB disk whose sector 0 starts with "BRIGDISK".
func guestFixture() throws -> (dir: String, kernel: String, disk: String) {
    let dir = tempDir()
    let kernel = dir + "/blk-guest.elf", disk = dir + "/disk.img"
    try #require(shell("sh '\(repoRoot)/Tests/VMM/Guests/build.sh' '\(kernel)'") == 0, "building the test guest with gcc failed")
    let fd = open(disk, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    let img = Array("BRIGDISK".utf8) + [UInt8](repeating: 0, count: (1 << 20) - 8)
    #expect(write(fd, img, img.count) == img.count)
    close(fd)
    return (dir, kernel, disk)
}

func boot(_ kernel: String, disks: [VMConfig.Disk], cmdline: String = "console=ttyS0", pvh: Bool = true,
          serial: String) throws -> StopReason {
    var c = VMConfig(kernelPath: kernel)
    c.disks = disks; c.memoryBytes = 64 << 20; c.cmdline = cmdline; c.preferPVH = pvh; c.timeoutSeconds = 60
    let fd = open(serial, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    defer { close(fd) }
    c.serialFD = fd
    return try VirtualMachine(c).run()
}

extension KVMTests {
@Suite(.enabled(if: kvmUsable, kvmReason))
struct GuestBootTests {
    @Test(arguments: [true, false])
    func guestBootsWritesDiskAndPowersOff(pvh: Bool) throws {
        let f = try guestFixture()
        defer { _ = shell("rm -rf '\(f.dir)'") }
        let log = f.dir + "/serial.log"
        let reason = try boot(f.kernel, disks: [.init(path: f.disk, readOnly: false)], cmdline: "console=ttyS0 exit=3", pvh: pvh, serial: log)
        let out = String(decoding: readAll(log), as: UTF8.self)
        #expect(reason == .powerOff(status: 3), "serial:\n\(out)")
        #expect(out.contains(pvh ? "64-bit long mode (PVH entry)" : "64-bit long mode (64-bit entry)"))
        #expect(out.contains("virtio-blk at 0x00000000d0000000"))
        #expect(out.contains("write/read-back sector 2 ok"))
        // The write reached the host file.
        let disk = readAll(f.disk)
        #expect(disk.count == 1 << 20)
        #expect(Array(disk[1024..<1536]) == (0..<512).map { UInt8(truncatingIfNeeded: $0 * 13 + 7) })
        // Nothing left behind: every fd (KVM, VM, vCPU, disk) is closed again.
        #expect(vmFDs(disk: f.disk) == [])
    }

    @Test func readOnlyDiskRejectsGuestWrites() throws {
        let f = try guestFixture()
        defer { _ = shell("rm -rf '\(f.dir)'") }
        let log = f.dir + "/serial.log"
        let reason = try boot(f.kernel, disks: [.init(path: f.disk, readOnly: true)], cmdline: "expect-ro", serial: log)
        let out = String(decoding: readAll(log), as: UTF8.self)
        #expect(reason == .powerOff(status: 0), "serial:\n\(out)")
        #expect(out.contains("write refused (read-only) ok"))
        #expect(readAll(f.disk)[1024] == 0)
    }

    @Test func vmCommandExitsWithTheGuestStatus() throws {
        let f = try guestFixture()
        defer { _ = shell("rm -rf '\(f.dir)'") }
        let log = f.dir + "/serial.log"
        // Two vCPUs: the second waits for a SIPI in KVM_RUN and must be kicked out at power-off.
        let status = VMCommand.main(["vm", "boot", "--kernel", f.kernel, "--disk", f.disk, "--mem", "32M", "--cpus", "2",
                                     "--cmdline", "exit=42", "--serial-out", log, "--timeout", "60"])
        #expect(status == 42)
        #expect(String(decoding: readAll(log), as: UTF8.self).contains("virtio-blk ok, powering off"))
        // Without a disk the guest reports its failure status (11).
        #expect(VMCommand.main(["boot", "--kernel", f.kernel, "--serial-out", log, "--timeout", "60"]) == 11)
        // A non-kernel file is a configuration error.
        #expect(VMCommand.main(["boot", "--kernel", f.disk, "--serial-out", log]) == 125)
    }
}
}
