import Testing
import Glibc
import BrigGuestMemory
@testable import BrigDevices

/// virtio-net over a backend whose frames carry the virtio_net_hdr (a tap with IFF_VNET_HDR):
/// checksum and TSO offloads are offered, headers go through both ways, frames up to 64 KiB.
@Suite struct VirtioNetOffloadTests {
    static let base = VirtioNet.featureMAC | VirtioNet.featureMTU | VirtioNet.featureStatus

    @Test func offloadsAreOfferedOnlyWithAVnetHeaderBackend() throws {
        #expect(try VirtioNet(mac: NetDriver.mac, backend: MemoryNetBackend()).features == Self.base)
        #expect(try VirtioNet(mac: NetDriver.mac, backend: MemoryNetBackend(vnetHeader: true)).features == Self.base | VirtioNet.offloadFeatures)
        #expect(try VirtioNet(mac: NetDriver.mac, backend: MemoryNetBackend(vnetHeader: true)).maxTxFrame == VirtioNet.maxOffloadFrame)
    }

    @Test func theTapGetsWhatTheGuestAccepted() throws {
        let all = try NetDriver(vnetHeader: true, features: Self.base | VirtioNet.offloadFeatures)
        #expect(all.backend.offloads == [1 | 2 | 4])                    // TUN_F_CSUM | TSO4 | TSO6, at DRIVER_OK
        let csum = try NetDriver(vnetHeader: true, features: Self.base | VirtioNet.featureGuestCsum | VirtioNet.featureCsum)
        #expect(csum.backend.offloads == [1])
        // TSO without checksum offload is not something the tap takes: nothing.
        let tsoOnly = try NetDriver(vnetHeader: true, features: Self.base | VirtioNet.featureGuestTSO4)
        #expect(tsoOnly.backend.offloads == [0])
        let none = try NetDriver(vnetHeader: false)
        #expect(none.backend.offloads.isEmpty)
    }

    @Test func theGuestsHeaderGoesToTheTapAndLargeFramesPass() throws {
        let d = try NetDriver(vnetHeader: true, features: Self.base | VirtioNet.offloadFeatures)
        let gso: [UInt8] = [1 /* NEEDS_CSUM */, 1 /* TCPV4 */, 0x36, 0, 0xA8, 0x05, 34, 0, 16, 0, 0, 0]
        let big = frame(60_000)
        try d.send(big, split: 7, header: gso)
        #expect(d.backend.sent == [gso + big])
        #expect(d.net.stats.txFrames == 1)
        // One byte past the largest TSO frame is dropped, as is a frame with only a header.
        try d.send(frame(VirtioNet.maxOffloadFrame + 1), header: gso)
        try d.send([], header: gso)
        #expect(d.backend.sent.count == 1 && d.net.stats.txDropped == 2)
    }

    @Test func theHostsHeaderReachesTheGuestWithOneBuffer() throws {
        let d = try NetDriver(vnetHeader: true, features: Self.base | VirtioNet.offloadFeatures)
        var hostHeader: [UInt8] = [1, 1, 0x36, 0, 0xA8, 0x05, 34, 0, 16, 0, 0x77, 0x77] // num_buffers garbage
        let f = frame(40_000, seed: 3)
        d.backend.inject(hostHeader + f)
        try d.offerRx(0, len: 0x10000)
        #expect(try d.usedIdx(0) == 1)
        #expect(try d.usedElem(0, 0).len == UInt32(12 + f.count))
        hostHeader[10] = 1; hostHeader[11] = 0
        #expect(try d.rxBytes(0, 12 + f.count) == hostHeader + f)
        // A host "frame" no longer than the header, and one the guest's buffer cannot hold: dropped.
        d.backend.inject([UInt8](repeating: 0, count: 12))
        try d.offerRx(1, len: 0x2000)
        d.backend.inject([UInt8](repeating: 0, count: 12) + frame(0x2000))
        try d.offerRx(2, len: 0x2000)
        #expect(try d.usedElem(0, 1).len == 0 && d.usedElem(0, 2).len == 0)
        #expect(d.net.stats.rxFrames == 1 && d.net.stats.rxDropped == 2)
    }
}
