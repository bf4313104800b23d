import BrigCore
import BrigOCI
import Glibc
import Testing
@testable import BrigMicroVM

@Suite struct GuestSharesTests {
    @Test func bindsBecomeSharesAndTheGuestBindsFromTheDevice() throws {
        var s = Spec()
        s.mounts = [Mount(destination: "/proc", type: "proc", source: "proc", options: nil),
                    Mount(destination: "/data", type: "bind", source: "/tmp", options: ["rbind", "ro", "rw"]),
                    Mount(destination: "/etc/hosts", type: "none", source: "/etc/hosts", options: ["bind", "ro", "nosuid"]),
                    Mount(destination: "/rel", type: "bind", source: ".", options: ["rbind"])]
        let (shares, guest) = try GuestShares.plan(s, bundle: "/etc")
        #expect(shares == [SharedPath(source: "/tmp", readOnly: false, recursive: true),
                           SharedPath(source: "/etc/hosts", readOnly: true, recursive: false),
                           SharedPath(source: "/etc/.", readOnly: false, recursive: true)])
        #expect(guest.mounts?.map { $0.source } == ["proc", "/run/brig-fs/0", "/run/brig-fs/1", "/run/brig-fs/2"])
        #expect(guest.mounts?[2].options == ["bind", "ro", "nosuid"], "the guest applies the mount's own options")
        var plan = try MicroVMPlan.make(spec: { var x = Spec(); x.root = Root(path: "r", readonly: nil); return x }(), bundle: "/b",
                                        defaults: MicroVMDefaults(kernel: "/k", initrd: "/i"))
        #expect(!plan.cmdline().contains("brig.fs="))
        plan.shares = shares
        #expect(plan.cmdline().contains("brig.fs=\(GuestShares.tag)"))
    }

    @Test func sourcesThatCannotBeSharedAreRefusedNamingTheField() {
        func message(_ source: String?) -> String {
            var s = Spec()
            s.mounts = [Mount(destination: "/a", type: "tmpfs", source: "tmpfs", options: nil),
                        Mount(destination: "/x", type: "bind", source: source, options: ["bind"])]
            do { _ = try GuestShares.plan(s, bundle: "/b"); return "" } catch { return error.message }
        }
        #expect(message("/dev/null").hasPrefix("mounts[1].source: /dev/null is not a directory or a regular file"))
        #expect(message("/no/such/path").hasPrefix("mounts[1].source: /no/such/path"))
        #expect(message(nil).hasPrefix("mounts[1].source: required"))
    }
}
