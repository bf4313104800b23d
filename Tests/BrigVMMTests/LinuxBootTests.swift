import Testing
import Glibc
import BrigKVM
@testable import BrigVMM

/// Boots a real Linux (scripts/build-guest-kernel.sh, cached under .cache/kernel/) with an
/// ext4 root on virtio-blk and checks the serial log up to "Run /init".
/// Slow: ~1.5 min on a PVM host (instruction emulation), seconds on VMX/SVM; the first run
/// also builds the kernel.
let linuxSourceAvailable: Bool = access("/usr/src/linux-source-6.1.tar.xz", R_OK) == 0
let linuxReason: Comment = "needs /dev/kvm and /usr/src/linux-source-6.1.tar.xz (apt-get install linux-source-6.1 flex bison bc libelf-dev libssl-dev)"

func commandOutput(_ cmd: String) -> (status: Int32, output: String) {
    guard let p = popen(cmd, "r") else { return (-1, "") }
    var out: [UInt8] = [], buf = [UInt8](repeating: 0, count: 4096)
    while true { let n = fread(&buf, 1, buf.count, p); if n <= 0 { break }; out += buf[0..<n] }
    let s = pclose(p)
    return ((s >> 8) & 0xFF, String(decoding: out, as: UTF8.self))
}

extension KVMTests {
@Suite(.enabled(if: kvmUsable && linuxSourceAvailable, linuxReason), .timeLimit(.minutes(30)))
struct LinuxBootTests {
    @Test func linuxBootsToInitFromAVirtioBlkExt4Root() throws {
        let host = HostKVMInfo.detect()
        let pvm = host.kind == .pvm
        let build = commandOutput("PVM_HOST=\(pvm ? 1 : 0) sh '\(repoRoot)/scripts/build-guest-kernel.sh' 2>&1")
        try #require(build.status == 0, "kernel build failed:\n\(build.output.suffix(3000))")
        let kernel = String(build.output.split(separator: "\n").last ?? "")

        let dir = tempDir()
        defer { _ = shell("rm -rf '\(dir)'") }
        try #require(shell("mkdir -p '\(dir)/root/dev' '\(dir)/root/proc' '\(dir)/root/sys' && gcc -static -O2 -o '\(dir)/root/init' '\(repoRoot)/Tests/guests/init.c'") == 0)
        try #require(shell("mke2fs -q -t ext4 -d '\(dir)/root' -F '\(dir)/root.img' 8M") == 0, "mke2fs -d failed")

        var c = VMConfig(kernelPath: kernel)
        c.disks = [.init(path: dir + "/root.img", readOnly: false)]
        c.memoryBytes = 256 << 20
        c.timeoutSeconds = 240
        c.cmdline = "console=ttyS0 reboot=k panic=-1 pci=off root=/dev/vda rw init=/init"
        if pvm {
            // PVM emulates the guest instruction by instruction and cannot run xsave, clac/stac,
            // cmpxchg16b or popcnt; CPUID filtering alone did not stop Linux using smap/smep
            // there, so the features are also cleared on the command line (cx16, popcnt, smep, smap).
            c.cmdline += " noxsave clearcpuid=141,151,295,308"
            c.cpuid = CPUIDPolicy(vendor: "GenuineIntel", hide: [.cx16, .smap, .smep, .popcnt])
        }
        let log = dir + "/serial.log"
        let fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        c.serialFD = fd
        let reason = try VirtualMachine(c).run()
        close(fd)
        let out = String(decoding: readAll(log), as: UTF8.self)
        let tail = String(out.suffix(2500))
        #expect(out.contains("virtio_blk virtio0: [vda]"), "no virtio-blk probe line; \(host)\n\(tail)")
        #expect(out.contains("VFS: Mounted root (ext4 filesystem)"), "root not mounted; \(host)\n\(tail)")
        #expect(out.contains("Run /init as init process"), "init not started; \(host)\n\(tail)")
        if pvm {
            // Known PVM limitation: user space faults at its first syscall, init dies, the
            // kernel panics and (panic=-1, reboot=k) resets through the i8042.
            #expect(reason == .reset, "\(reason); \(host)")
        } else {
            #expect(out.contains("brig-init: hello from PID 1"), "\(host)\n\(tail)")
            #expect(reason == .reset, "\(reason); \(host)")
        }
    }
}
}
