import Testing
import BrigDevices
import BrigKVM
@testable import BrigVMM

@Test func ioAndMMIOExitsRouteToBusAccesses() {
    #expect(route(.ioIn(port: 0x3FD, size: 1, count: 1)) == .pioRead(port: 0x3FD, size: 1, count: 1))
    #expect(route(.ioOut(port: 0x3F8, size: 1, data: [0x41])) == .pioWrite(port: 0x3F8, size: 1, data: [0x41]))
    #expect(route(.mmioRead(address: 0xD000_0000, size: 4)) == .mmioRead(address: 0xD000_0000, size: 4))
    #expect(route(.mmioWrite(address: 0xD000_0050, data: [0, 0, 0, 0])) == .mmioWrite(address: 0xD000_0050, data: [0, 0, 0, 0]))
    #expect(route(.interrupted) == .resume)
}

@Test func terminalExitsStopWithTheRightReasonAndStatus() {
    #expect(route(.shutdown) == .stop(.tripleFault))
    #expect(route(.hlt) == .stop(.halted))
    #expect(route(.failEntry(reason: 0x21)) == .stop(.entryFailure(reason: 0x21)))
    #expect(route(.internalError(suberror: 1)) == .stop(.internalError(suberror: 1)))
    #expect(route(.systemEvent(type: VcpuExit.systemEventShutdown)) == .stop(.reset))
    #expect(route(.systemEvent(type: VcpuExit.systemEventReset)) == .stop(.reset))
    #expect(route(.systemEvent(type: VcpuExit.systemEventCrash)) == .stop(.guestCrash))
    #expect(route(.unknown(reason: 99)) == .stop(.unknownExit(reason: 99)))
    #expect(StopReason.tripleFault.exitStatus == 126 && StopReason.guestCrash.exitStatus == 126)
    #expect(StopReason.reset.exitStatus == 0 && StopReason.timeout(seconds: 1).exitStatus == 124)
    #expect(StopReason.vmmError("x").exitStatus == 125)
    #expect(StopReason.internalError(suberror: 1).description.contains("emulation failure"))
}

@Test func deviceEffectsRouteToStops() {
    #expect(route(DeviceEffect.none) == .resume)
    #expect(route(DeviceEffect.reset) == .stop(.reset))
    #expect(route(DeviceEffect.powerOff(status: 42)) == .stop(.powerOff(status: 42)))
    #expect(StopReason.powerOff(status: 42).exitStatus == 42)
}

@Test func cpuidPolicyFiltersLikeFirecracker() {
    let host = [
        CPUIDEntry(function: 0, eax: 0xD, ebx: 0x6874_7541, ecx: 0x444D_4163, edx: 0x6974_6E65),
        CPUIDEntry(function: 1, ebx: 0xFF00_0800, ecx: 1 << 13 | 1 << 23 | 1 << 26, edx: 1 << 28),
        CPUIDEntry(function: 7, ebx: 1 << 7 | 1 << 20 | 1),
        CPUIDEntry(function: 0xA, eax: 0x0703_0302, ebx: 1),
        CPUIDEntry(function: 0xB, index: 1, edx: 77),
    ]
    let out = CPUIDPolicy(vendor: "GenuineIntel", hide: [.cx16, .popcnt, .smep, .smap]).apply(host, cpuIndex: 2, cpuCount: 1)
    #expect(out[0].ebx == 0x756E_6547 && out[0].edx == 0x4965_6E69 && out[0].ecx == 0x6C65_746E)  // "GenuineIntel"
    #expect(out[1].ebx >> 24 == 2 && (out[1].ebx >> 16) & 0xFF == 1)
    #expect(out[1].ecx & (1 << 31) != 0)                       // hypervisor bit
    #expect(out[1].ecx & (1 << 13 | 1 << 23) == 0 && out[1].ecx & (1 << 26) != 0)
    #expect(out[1].edx & (1 << 28) == 0)                       // no HTT with one CPU
    #expect(out[2].ebx == 1)                                   // smep, smap gone; others kept
    #expect(out[3] == CPUIDEntry(function: 0xA))
    #expect(out[4].edx == 2)
    #expect(CPUIDPolicy().apply(host, cpuIndex: 0, cpuCount: 1)[0] == host[0])
}

@Test func hostKVMKindIsClassified() {
    #expect(HostKVMInfo.classify(cpuinfo: "vendor_id\t: GenuineIntel\nflags\t\t: fpu vmx sse\n", pvmModuleLoaded: false).kind == .vmx)
    #expect(HostKVMInfo.classify(cpuinfo: "vendor_id\t: AuthenticAMD\nflags\t\t: fpu svm\n", pvmModuleLoaded: false).kind == .svm)
    let pvm = HostKVMInfo.classify(cpuinfo: "vendor_id\t: AuthenticAMD\nflags\t\t: fpu hypervisor\n", pvmModuleLoaded: true)
    #expect(pvm.kind == .pvm && pvm.cpuVendor == "AuthenticAMD")
    #expect(HostKVMInfo.classify(cpuinfo: "", pvmModuleLoaded: false).kind == .unknown)
}

@Test func vmBootArgumentsParse() throws {
    let o = try VMCommand.parse(["--kernel", "k", "--initrd", "i", "--disk", "a", "--disk", "b", "--disk-ro", "--mem", "512M",
                                 "--cpus", "2", "--cmdline", "x y", "--serial-out", "s", "--timeout", "5", "--no-pvh",
                                 "--cpuid-vendor", "GenuineIntel", "--cpuid-hide", "cx16,smap"])
    #expect(o.config.kernelPath == "k" && o.config.initrdPath == "i")
    #expect(o.config.disks.map(\.path) == ["a", "b"] && o.config.disks.map(\.readOnly) == [false, true])
    #expect(o.config.memoryBytes == 512 << 20 && o.config.cpus == 2 && o.config.cmdline == "x y")
    #expect(o.serialOut == "s" && o.config.timeoutSeconds == 5 && !o.config.preferPVH)
    #expect(o.config.cpuid == CPUIDPolicy(vendor: "GenuineIntel", hide: [.cx16, .smap]))
    #expect(o.config.vsock == nil)
    let v = try VMCommand.parse(["--kernel", "k", "--vsock-uds", "/run/v.sock", "--vsock-cid", "42"])
    #expect(v.config.vsock?.udsPath == "/run/v.sock" && v.config.vsock?.guestCID == 42)
    #expect(try VMCommand.parse(["--kernel", "k", "--vsock-uds", "u"]).config.vsock?.guestCID == 3)
    #expect(throws: VMCommand.ParseError.badValue(option: "--vsock-cid", value: "2")) { try VMCommand.parse(["--vsock-cid", "2"]) }
    #expect(throws: VMCommand.ParseError.missingKernel) { try VMCommand.parse([]) }
    #expect(throws: VMCommand.ParseError.missingValue("--mem")) { try VMCommand.parse(["--kernel", "k", "--mem"]) }
    #expect(throws: VMCommand.ParseError.badValue(option: "--mem", value: "lots")) { try VMCommand.parse(["--kernel", "k", "--mem", "lots"]) }
    #expect(throws: VMCommand.ParseError.badValue(option: "--disk-ro", value: "must follow --disk")) { try VMCommand.parse(["--disk-ro"]) }
    #expect(throws: VMCommand.ParseError.unknownOption("--bogus")) { try VMCommand.parse(["--bogus"]) }
    #expect(VMCommand.parseSize("1G") == 1 << 30 && VMCommand.parseSize("64k") == 65536 && VMCommand.parseSize("x") == nil)
    #expect(VMCommand.parseSize("99999999999999999G") == nil)
    #expect(VMCommand.main(["vm", "boot"]) == 125)
    #expect(VMCommand.main(["frobnicate"]) == 125)
}

@Test func deviceMapPlacesVirtioInTheMMIOHole() {
    #expect(DeviceMap.virtio(0) == (0xD000_0000, 5))
    #expect(DeviceMap.virtio(2) == (0xD000_2000, 7))
}
