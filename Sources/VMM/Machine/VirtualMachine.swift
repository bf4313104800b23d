#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import BrigGuestMemory
import BrigBoot
import BrigDevices
import BrigKVM
import BrigLinux
import CBrigKVM

public enum VMError: Error, CustomStringConvertible {
    case config(String)
    case file(SystemError)
    case boot(BootError)
    case kvm(KVMError, host: HostKVMInfo)
    case memory(GuestMemoryError)
    case device(String)

    public var description: String {
        switch self {
        case let .config(m): return m
        case let .file(e): return e.description
        case let .boot(e): return "loading the kernel: \(e)"
        case let .kvm(e, h): return "\(e) [\(h)]"
        case let .memory(e): return e.description
        case let .device(m): return m
        }
    }
}

/// Edge-triggered interrupt over KVM_IRQ_LINE (raise then lower).
final class KVMInterruptLine: InterruptLine {
    let vm: VM, irq: UInt32
    init(vm: VM, irq: UInt32) { self.vm = vm; self.irq = irq }
    func trigger() {
        try? vm.setIRQLine(irq, level: true)
        try? vm.setIRQLine(irq, level: false)
    }
}

/// A built VM: guest memory, devices, KVM objects. `run()` starts the vCPUs and blocks
/// until the guest stops.
public final class VirtualMachine: @unchecked Sendable {
    public let config: VMConfig
    public let host: HostKVMInfo
    let memory: GuestMemory
    let vm: VM
    let vcpus: [VCPU]
    let pio = Bus(), mmio = Bus()
    public let serial: Serial16550
    public private(set) var cmdline: KernelCmdline
    public let boot: BootLoader.Result
    /// The vsock device's host side when `config.vsock` is set; its thread runs while `run()` does.
    public let vsock: VsockMuxer?
    let vsockTransport: VirtioMMIO?
    /// The virtio-net device when `config.net` is set; its event loop runs while `run()` does.
    public let net: VirtioNet?
    let netTransport: VirtioMMIO?
    private let stop = Mutex<StopReason?>(nil)
    /// How long each step of setting the VM up took, in seconds (`vm boot --timing` prints them).
    public let setupPhases: [(name: String, seconds: Double)]
    /// eventfd written once by the first requestStop.
    private let stopEvent: Int32 = brig_eventfd()
    /// Called with the first serial byte (for boot-time measurement).
    public var onFirstSerialByte: (@Sendable () -> Void)? {
        get { serial.onFirstByte } set { serial.onFirstByte = newValue }
    }

    public init(_ config: VMConfig) throws(VMError) {
        self.config = config
        var phases: [(String, Double)] = [("start", monotonicSeconds())]
        func phase(_ name: String) { phases.append((name, monotonicSeconds())) }
        let host = HostKVMInfo.detect()
        phase("host")
        self.host = host
        func kvm<T>(_ body: () throws(KVMError) -> T) throws(VMError) -> T {
            do { return try body() } catch { throw .kvm(error, host: host) }
        }
        guard (1...255).contains(config.cpus) else { throw .config("--cpus \(config.cpus) must be 1...255") }
        guard config.memoryBytes >= 16 << 20, config.memoryBytes % 4096 == 0 else {
            throw .config("--mem \(config.memoryBytes) must be at least 16 MiB and a multiple of 4 KiB")
        }
        let memory: GuestMemory
        do { memory = try GuestMemory.withHole(size: config.memoryBytes, mmioHoleStart: BootLayout.mmioHoleStart) } catch { throw .memory(error) }
        let sys = try kvm { () throws(KVMError) in try KVM() }
        let vm = try kvm { () throws(KVMError) in try sys.createVM() }
        for (i, r) in memory.regions.enumerated() {
            try kvm { () throws(KVMError) in try vm.setUserMemoryRegion(slot: UInt32(i), guestAddress: r.guestBase, size: r.size, host: r.host) }
        }
        try kvm { () throws(KVMError) in try vm.createIrqchipAndPIT(pit: config.pit) }
        phase("memory+kvm")

        // Devices.
        let serial = Serial16550(outFD: config.serialFD, irq: KVMInterruptLine(vm: vm, irq: DeviceMap.serialIRQ))
        var line = KernelCmdline(config.cmdline)
        var vsockDevice: (VsockMuxer, VirtioMMIO)?
        var netDevice: (VirtioNet, VirtioMMIO)?
        do {
            try pio.insert(serial, base: DeviceMap.serialPort, size: 8)
            try pio.insert(I8042(), base: I8042.base, size: I8042.size)
            try pio.insert(ExitPort(), base: ExitPort.port, size: 1)
            let bus = mmio; var slot = 0   // virtio-mmio slots in DeviceMap's order
            func attach(_ dev: any VirtioDevice) throws(BusError) -> VirtioMMIO {
                try Self.attach(dev, slot: &slot, memory: memory, vm: vm, bus: bus, cmdline: &line)
            }
            for d in config.disks {
                do { _ = try attach(try VirtioBlk(path: d.path, readOnly: d.readOnly)) } catch let e as VirtioBlkError { throw VMError.device(e.description) }
            }
            if let v = config.vsock {
                let muxer: VsockMuxer, dev: VirtioVsock
                do {
                    muxer = try VsockMuxer(guestCID: v.guestCID, udsPath: v.udsPath)
                    dev = try VirtioVsock(guestCID: v.guestCID, backend: muxer, maxPayload: Int(muxer.limits.bufAlloc))
                } catch { throw VMError.device(error.description) }
                vsockDevice = (muxer, try attach(dev))
            }
            if let n = config.net {
                let fd = try Tap.open(name: n.tapName, netnsPath: n.netnsPath)
                let dev: VirtioNet
                do { dev = try VirtioNet(mac: n.mac, mtu: n.mtu, backend: TapBackend(fd: fd)) } catch { throw VMError.device(error.description) }
                netDevice = (dev, try attach(dev))
            }
            if !config.fs.isEmpty { _ = try attach(try Self.fsDevice(config)) }
            if config.rng { _ = try attach(VirtioRNG()) }
            if config.freePageReporting { _ = try attach(VirtioBalloon()) }
        } catch let e as BusError { throw .device(e.description) } catch let e as VMError { throw e } catch { throw .device("\(error)") }

        phase("devices")
        // Kernel, initrd, boot structures.
        let kernel = try LoadFile(config.kernelPath)
        let initrd = try config.initrdPath.map { p throws(VMError) in try LoadFile(p) }
        let boot: BootLoader.Result
        do {
            boot = try withExtendedLifetime((kernel, initrd)) { () throws(BootError) in
                try BootLoader.load(kernel: kernel.bytes, initrd: initrd?.bytes, cmdline: line,
                                    preferPVH: config.preferPVH, cpus: config.cpus, into: memory)
            }
        } catch { throw .boot(error) }

        phase("load")
        // vCPUs.
        let supported = try kvm { () throws(KVMError) in try sys.supportedCPUID() }
        var list: [VCPU] = []
        for i in 0..<config.cpus {
            let v = try kvm { () throws(KVMError) in try vm.createVCPU(id: i) }
            try kvm { () throws(KVMError) in
                let cpuid = config.cpuid.apply(supported, cpuIndex: i, cpuCount: config.cpus)
                if getenv("BRIG_VMM_DEBUG_CPUID") != nil {
                    for e in cpuid where e.function == 1 || e.function == 7 { VMMLog.write("cpuid \(e)") }
                }
                try v.setCPUID(cpuid)
                try Self.setupMSRs(v)
                try v.setDefaultFPU()
                if i == 0 { try Self.setupRegisters(v, boot.cpu) }
            }
            list.append(v)
        }
        phase("vcpus")
        self.setupPhases = zip(phases.dropFirst(), phases).map { ($0.0, $0.1 - $1.1) }
        self.memory = memory; self.vm = vm; self.serial = serial; self.cmdline = line
        self.boot = boot; self.vcpus = list
        self.vsock = vsockDevice?.0; self.vsockTransport = vsockDevice?.1
        self.net = netDevice?.0; self.netTransport = netDevice?.1
    }

    deinit { close(stopEvent) }

    /// Puts `dev` behind the virtio-mmio window of `slot` (then the next slot), with its `virtio_mmio.device=` entry.
    static func attach(_ dev: any VirtioDevice, slot: inout Int, memory: GuestMemory, vm: VM, bus: Bus, cmdline: inout KernelCmdline) throws(BusError) -> VirtioMMIO {
        let (base, irq) = DeviceMap.virtio(slot)
        slot += 1
        let t = VirtioMMIO(device: dev, memory: memory, irq: KVMInterruptLine(vm: vm, irq: irq))
        try bus.insert(t, base: base, size: VirtioMMIO.windowSize)
        cmdline.append(virtioMMIOCmdlineEntry(base: base, irq: irq))
        return t
    }

    /// The virtio-fs device over `config.fs`, with the node limit the fd limit allows.
    static func fsDevice(_ config: VMConfig) throws(VMError) -> VirtioFS {
        do {
            let server = try FileServer(shares: config.fs.map { FSShare(source: $0.path, readOnly: $0.readOnly, recursive: $0.recursive) },
                                        limits: VirtioFS.raiseFileLimit(FileServerLimits()))
            return try VirtioFS(tag: config.fsTag, server: server)
        } catch { throw .device(error.description) }
    }

    /// Boot MSRs as Firecracker sets them; ones the host rejects are skipped.
    static func setupMSRs(_ v: VCPU) throws(KVMError) {
        let msrs: [(UInt32, UInt64)] = [
            (0x174, 0), (0x175, 0), (0x176, 0),              // SYSENTER_CS/ESP/EIP
            (0xC000_0081, 0), (0xC000_0082, 0), (0xC000_0083, 0), (0xC000_0084, 0), // STAR LSTAR CSTAR SFMASK
            (0xC000_0102, 0),                                // KERNEL_GS_BASE
            (0x10, 0),                                       // TSC
            (0x1A0, 1),                                      // MISC_ENABLE: fast strings
        ]
        for m in msrs { _ = try v.setMSRs([(m.0, m.1)]) }
    }

    static func kvmSegment(_ s: Segment) -> kvm_segment {
        var k = kvm_segment()
        k.base = s.base; k.limit = s.g ? (s.limit << 12 | 0xFFF) : s.limit; k.selector = s.selector
        k.type = s.type; k.present = s.present ? 1 : 0; k.dpl = s.dpl; k.db = s.db ? 1 : 0
        k.s = s.s ? 1 : 0; k.l = s.l ? 1 : 0; k.g = s.g ? 1 : 0
        return k
    }

    static func setupRegisters(_ v: VCPU, _ c: BootCPUState) throws(KVMError) {
        var sr = try v.getSregs()
        let code = kvmSegment(c.code), data = kvmSegment(c.data)
        sr.cs = code; sr.ds = data; sr.es = data; sr.fs = data; sr.gs = data; sr.ss = data
        sr.tr = kvmSegment(c.tss)
        sr.gdt.base = c.gdtBase; sr.gdt.limit = c.gdtLimit
        sr.idt.base = c.idtBase; sr.idt.limit = c.idtLimit
        sr.cr0 = c.cr0; sr.cr3 = c.cr3; sr.cr4 = c.cr4; sr.efer = c.efer
        try v.setSregs(sr)
        var r = kvm_regs()
        r.rip = c.rip; r.rsp = c.rsp; r.rbp = c.rbp; r.rsi = c.rsi; r.rbx = c.rbx; r.rflags = c.rflags
        try v.setRegs(r)
    }

    /// First stop request wins; it wakes `run()`, which then kicks every vCPU out of KVM_RUN.
    public func requestStop(_ reason: StopReason) {
        let first = stop.withLock { s -> Bool in
            if s == nil { s = reason; return true }
            return false
        }
        guard first else { return }
        for v in vcpus { v.setImmediateExit(true) }
        var one: UInt64 = 1
        _ = Glibc.write(stopEvent, &one, 8)
    }

    var stopped: Bool { stop.withLock { $0 != nil } }

    /// Why the VM stops, from the moment the stop is requested: before `run()` has joined its
    /// threads and returned it, and before the vsock device closes its host connections.
    public var stopReason: StopReason? { stop.withLock { $0 } }

    /// Runs one vCPU until the VM stops.
    func runVCPU(_ v: VCPU) {
        // The kick signal must be deliverable here even if the spawning thread blocks it
        // (e.g. a Dispatch worker).
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGUSR2)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        while !stopped {
            let exit: VcpuExit
            do { exit = try v.runOnce() } catch { requestStop(.vmmError("vCPU \(v.id): \(error)")); return }
            switch route(exit) {
            case let .pioRead(port, size, count):
                let buf = v.ioInBuffer()
                for i in 0..<count { pio.read(UInt64(port), into: UnsafeMutableRawBufferPointer(rebasing: buf[i * size..<(i + 1) * size])) }
            case let .pioWrite(port, size, data):
                for i in stride(from: 0, to: data.count, by: max(size, 1)) {
                    let effect = data[i..<min(i + size, data.count)].withUnsafeBytes { pio.write(UInt64(port), data: $0) }
                    if case let .stop(r) = route(effect) { requestStop(r) }
                }
            case let .mmioRead(a, _): mmio.read(a, into: v.mmioReadBuffer())
            case let .mmioWrite(a, data):
                if case let .stop(r) = route(data.withUnsafeBytes({ mmio.write(a, data: $0) })) { requestStop(r) }
            case .resume: continue
            case let .stop(r):
                if r.exitStatus == 126 { recordCrashState(v) }
                requestStop(r)
            }
        }
    }

    /// Registers of the vCPU that crashed, for the failure report.
    public private(set) var crashState: String?

    private func recordCrashState(_ v: VCPU) {
        guard let r = try? v.getRegs(), let sr = try? v.getSregs() else { return }
        func h(_ x: UInt64) -> String { "0x" + String(x, radix: 16) }
        var bytes = ""
        if let code = try? memory.read(r.rip & 0xFFFF_FFFF_FFFF, count: 16) { bytes = code.map { String($0, radix: 16) }.joined(separator: " ") }
        crashState = "vCPU \(v.id): rip=\(h(r.rip)) rsp=\(h(r.rsp)) rflags=\(h(r.rflags)) cr0=\(h(sr.cr0)) cr3=\(h(sr.cr3)) cr4=\(h(sr.cr4)) efer=\(h(sr.efer))"
            + (bytes.isEmpty ? "" : " code@rip(if identity-mapped)=[\(bytes)]")
    }

    /// Starts every vCPU on its own thread and waits for the guest to stop (or the timeout).
    /// A vCPU can sit in KVM_RUN where immediate_exit is not looked at (an AP waiting for
    /// SIPI) and a signal sent just before it enters KVM_RUN is lost, so the vCPUs are
    /// kicked repeatedly until every thread has left its loop, then joined.
    public func run() -> StopReason {
        installKickHandler()
        // vsock host sockets are serviced on the muxer's own thread; packets for the guest are
        // pushed into the rx queue as if the driver had notified it.
        let vsockThread = vsock.map { muxer in
            let t = vsockTransport
            return Threads.spawn { muxer.serve { t?.notify(VirtioVsock.rxQueue) } }
        }
        // Tap frames likewise, while the guest has rx buffers.
        let netThread = net.map { dev in
            let t = netTransport
            return Threads.spawn { dev.serve { t?.notify(VirtioNet.rxQueue) } }
        }
        defer {
            vsock?.shutdown()
            net?.stop()
            if let t = vsockThread { pthread_join(t, nil) }
            if let t = netThread { pthread_join(t, nil) }
        }
        let live = Mutex(vcpus.count)
        var started: [pthread_t] = []
        for v in vcpus {
            started.append(Threads.spawn { [self] in
                self.runVCPU(v)
                live.withLock { $0 -= 1 }
            })
        }
        var pfd = pollfd(fd: stopEvent, events: Int16(POLLIN), revents: 0)
        let deadline = config.timeoutSeconds.map { monotonicSeconds() + $0 }
        while !stopped {
            var wait: Int32 = -1
            if let d = deadline {
                let left = d - monotonicSeconds()
                if left <= 0 { requestStop(.timeout(seconds: config.timeoutSeconds ?? 0)); break }
                wait = Int32(min(left * 1000 + 1, 60_000))
            }
            _ = poll(&pfd, 1, wait)
        }
        while live.withLock({ $0 }) > 0 {
            for t in started { pthread_kill(t, SIGUSR2) }
            usleep(2000)
        }
        for t in started { pthread_join(t, nil) }
        let reason = stop.withLock { $0 } ?? .halted
        // Where was the guest when it ran out of time?
        if case .timeout = reason, crashState == nil, let v = vcpus.first { recordCrashState(v) }
        return reason
    }
}

/// A no-op SIGUSR2 handler (without SA_RESTART) so pthread_kill interrupts KVM_RUN.
func installKickHandler() {
    var sa = sigaction()
    sa.__sigaction_handler.sa_handler = { _ in }
    sigemptyset(&sa.sa_mask)
    sa.sa_flags = 0
    sigaction(SIGUSR2, &sa, nil)
}
