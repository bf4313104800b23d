import Testing
import Glibc
import BrigKVM
import BrigBoot
import BrigDevices
import BrigGuestMemory
@testable import BrigVMM

/// Boots a real Linux (scripts/build-guest-kernel.sh, cached under .cache/kernel/) with an
/// ext4 root on virtio-blk and checks the serial log up to "Run /init".
/// Slow: minutes on a PVM host (instruction emulation), seconds on VMX/SVM; the first run
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
    /// Builds (or reuses) the cached kernel; returns the vmlinux path.
    static func kernel(pvm: Bool) throws -> String {
        let build = commandOutput("PVM_HOST=\(pvm ? 1 : 0) sh '\(repoRoot)/scripts/build-guest-kernel.sh' 2>&1")
        try #require(build.status == 0, "kernel build failed:\n\(build.output.suffix(3000))")
        return String(build.output.split(separator: "\n").last ?? "")
    }

    /// Config for booting Linux on this host (PVM needs the workarounds in docs/vmm.md).
    static func linuxConfig(kernel: String, pvm: Bool, root: String) -> VMConfig {
        var c = VMConfig(kernelPath: kernel)
        c.disks = [.init(path: root, readOnly: false)]
        c.memoryBytes = 256 << 20
        // PVM: ~1.5 min to "Run /init" for a UP tinyconfig kernel; ~4 min alone for the microvm
        // guest kernel (cgroups, BPF, PCI…), much more when other guests share the 2 cores.
        c.timeoutSeconds = pvm ? 900 : 120
        c.cmdline = "console=ttyS0 reboot=k panic=-1 pci=off root=/dev/vda rw init=/init"
        if pvm {
            // PVM emulates the guest instruction by instruction and cannot run xsave, clac/stac,
            // cmpxchg16b or popcnt; CPUID filtering alone did not stop Linux using smap/smep
            // there, so the features are also cleared on the command line (cx16, popcnt, smep, smap).
            c.cmdline += " noxsave clearcpuid=141,151,295,308"
            c.cpuid = CPUIDPolicy(vendor: "GenuineIntel", hide: [.cx16, .smap, .smep, .popcnt])
        }
        return c
    }

    static func run(_ c: VMConfig, log: String) throws -> (StopReason, String, VirtualMachine) {
        var c = c
        let fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        c.serialFD = fd
        let vm = try VirtualMachine(c)
        let reason = try vm.run()
        close(fd)
        return (reason, String(decoding: readAll(log), as: UTF8.self), vm)
    }

    /// On a PVM host (instruction emulation) the guest kernel with virtio-net, IPv6 and
    /// virtio-fs built in stops printing after "random: crng init done" (~100 s in; the test
    /// waited 900 s on an idle host, 2026-12-05) — under investigation. The same kernel boots to
    /// brig-agent under real nested KVM in CI's VM-host steps (microvm-e2e/net/fs), so here the
    /// PVM run is opt-in: BRIG_PVM_LINUX_BOOT=1.
    static let bootRunsHere = HostKVMInfo.detect().kind != .pvm || getenv("BRIG_PVM_LINUX_BOOT") != nil

    @Test(.enabled(if: bootRunsHere, "PVM host: opt in with BRIG_PVM_LINUX_BOOT=1 (stalls after crng init; see above)"))
    func linuxBootsToInitFromAVirtioBlkExt4Root() throws {
        let host = HostKVMInfo.detect()
        let pvm = host.kind == .pvm
        let kernel = try Self.kernel(pvm: pvm)
        let dir = tempDir()
        defer { _ = shell("rm -rf '\(dir)'") }
        try #require(shell("mkdir -p '\(dir)/root/dev' '\(dir)/root/proc' '\(dir)/root/sys' && gcc -static -O2 -o '\(dir)/root/init' '\(repoRoot)/Tests/VMM/Guests/init.c'") == 0)
        try #require(shell("mke2fs -q -t ext4 -d '\(dir)/root' -F '\(dir)/root.img' 8M") == 0, "mke2fs -d failed")
        var c = Self.linuxConfig(kernel: kernel, pvm: pvm, root: dir + "/root.img")
        // The microvm backend's second device: the guest's virtio-vsock driver must bind to it.
        c.vsock = VsockConfig(udsPath: dir + "/vsock.sock")
        let (reason, out, vm) = try Self.run(c, log: dir + "/serial.log")
        let tail = String(out.suffix(2500))
        #expect(out.contains("virtio_blk virtio0: [vda]"), "no virtio-blk probe line; \(host)\n\(tail)")
        #expect(out.contains("NET: Registered PF_VSOCK protocol family"), "no vsock; \(host)\n\(tail)")
        // virtio_vsock_probe ends with virtio_device_ready(): DRIVER_OK in the device status.
        let vsockStatus = vm.vsockTransport?.status ?? 0
        #expect(vsockStatus & VirtioMMIO.driverOK != 0, "vsock driver did not bind (status \(vsockStatus)); \(host)\n\(tail)")
        #expect(out.contains("VFS: Mounted root (ext4 filesystem)"), "root not mounted; \(host)\n\(tail)")
        #expect(out.contains("Run /init as init process"), "init not started; \(host)\n\(tail)")
        if pvm {
            // Known PVM limitation: user space dies right after "Run /init". Observed: with a
            // UP kernel init faults at its first syscall, the kernel panics and (panic=-1,
            // reboot=k) resets through the i8042; with this SMP kernel the emulator fails on an
            // fwait (KVM internal error, emulation failure) just after init starts.
            var emulationFailure = false
            if case .internalError(1, _) = reason { emulationFailure = true }
            #expect(reason == .reset || emulationFailure, "\(reason); \(host)")
        } else {
            #expect(out.contains("brig-init: hello from PID 1"), "\(host)\n\(tail)")
            #expect(reason == .reset, "\(reason); \(host)")
        }
    }

    /// The same kernel as a bzImage: 64-bit boot protocol entry into the decompressor, setup
    /// header copied into the zero page. On PVM the emulated xz decompression is slow, so
    /// only the banner and command line are required within the time limit.
    @Test func bzImageLoadsAndBoots() throws {
        let host = HostKVMInfo.detect()
        let pvm = host.kind == .pvm
        let vmlinux = try Self.kernel(pvm: pvm)
        let bz = String(vmlinux.dropLast("vmlinux".count)) + "bzImage"
        let image = readAll(bz)
        try #require(!image.isEmpty, "no \(bz)")
        let m = try GuestMemory.withHole(size: 256 << 20)
        let k = try KernelImage.load(image, into: m)
        #expect(k.entry == .linux64(entry: 0x100200))
        #expect(k.setupHeader != nil)

        let dir = tempDir()
        defer { _ = shell("rm -rf '\(dir)'") }
        try #require(shell("truncate -s 1M '\(dir)/empty.img'") == 0)
        var c = Self.linuxConfig(kernel: bz, pvm: pvm, root: dir + "/empty.img")
        c.timeoutSeconds = pvm ? 30 : 60
        let (reason, out, _) = try Self.run(c, log: dir + "/serial.log")
        let tail = String(out.suffix(2500))
        if pvm {
            // Measured here: the emulated xz decompressor is still running (RIP inside the
            // relocated decompressor, its own page tables loaded) after minutes, so on PVM only
            // require that the 64-bit entry ran without a crash or emulation failure.
            #expect(reason == .timeout(seconds: 30) || out.contains("Linux version 6.1"), "\(reason); \(host)\n\(tail)")
        } else {
            #expect(out.contains("Linux version 6.1"), "\(reason); \(host)\n\(tail)")
            #expect(out.contains("Command line: console=ttyS0") && out.contains("virtio_mmio.device=4K@0xd0000000:5"), "\(tail)")
            // No root filesystem on the empty disk: the kernel panics and resets (panic=-1).
            #expect(reason == .reset, "\(reason); \(host)\n\(tail)")
        }
    }
}
}
