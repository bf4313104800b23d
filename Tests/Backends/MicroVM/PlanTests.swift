import BrigCore
import BrigOCI
import Glibc
import Testing
@testable import BrigMicroVM

@Suite struct PlanTests {
    let defaults = MicroVMDefaults(kernel: "/boot/k", initrd: "/boot/i", hostCPUs: 4)

    func spec(_ edit: (inout Spec) -> Void = { _ in }) -> Spec {
        var s = Spec()
        s.root = Root(path: "rootfs", readonly: nil)
        edit(&s)
        return s
    }

    @Test func defaultsWithoutVMObject() throws {
        let p = try MicroVMPlan.make(spec: spec(), bundle: "/b", defaults: defaults)
        #expect(p.kernel == "/boot/k" && p.initrd == "/boot/i")
        #expect(p.rootDisk == .directory(path: "/b/rootfs"))
        #expect(p.memoryBytes == MicroVMPlan.defaultMemoryBytes && p.cpus == 1 && !p.readOnlyRoot)
        #expect(p.cmdline().contains("brig.transport=vsock"))
    }

    @Test func vmObjectOverridesKernelAndImage() throws {
        let s = spec {
            $0.vm = VM(hypervisor: nil, kernel: .init(path: "/my/vmlinux", parameters: ["loglevel=8"], initrd: "/my/initrd"),
                       image: .init(path: "disk.img", format: "raw"))
            $0.root?.readonly = true
        }
        let p = try MicroVMPlan.make(spec: s, bundle: "/b", defaults: defaults)
        #expect(p.kernel == "/my/vmlinux" && p.initrd == "/my/initrd")
        #expect(p.rootDisk == .image(path: "/b/disk.img") && p.readOnlyRoot)
        #expect(p.cmdline().hasSuffix("brig.root=ro loglevel=8"))
    }

    @Test func agentInitrdDefaultsWhenOnlyKernelGiven() throws {
        let s = spec { $0.vm = VM(hypervisor: nil, kernel: .init(path: "/my/vmlinux", parameters: nil, initrd: nil), image: nil) }
        #expect(try MicroVMPlan.make(spec: s, bundle: "/b", defaults: defaults).initrd == "/boot/i")
    }

    @Test func memoryLimitBecomesGuestRAMPlusOverhead() throws {
        let s = spec { $0.linux = Linux(); $0.linux?.resources = Resources(); $0.linux?.resources?.memory = .init(); $0.linux?.resources?.memory?.limit = 512 << 20 }
        #expect(try MicroVMPlan.make(spec: s, bundle: "/b", defaults: defaults).memoryBytes == (512 << 20) + MicroVMPlan.overheadBytes)
        let small = spec { $0.linux = Linux(); $0.linux?.resources = Resources(); $0.linux?.resources?.memory = .init(); $0.linux?.resources?.memory?.limit = 1000 }
        #expect(try MicroVMPlan.make(spec: small, bundle: "/b", defaults: defaults).memoryBytes == MicroVMPlan.defaultMemoryBytes)
    }

    @Test func cpusFromQuotaOrCpuset() throws {
        func cpus(_ edit: @escaping (inout Resources.CPU) -> Void) throws -> Int {
            let s = spec { var c = Resources.CPU(); edit(&c); $0.linux = Linux(); $0.linux?.resources = Resources(); $0.linux?.resources?.cpu = c }
            return try MicroVMPlan.make(spec: s, bundle: "/b", defaults: defaults).cpus
        }
        #expect(try cpus { $0.quota = 150_000; $0.period = 100_000 } == 2)
        #expect(try cpus { $0.cpus = "0-2" } == 3)
        #expect(try cpus { $0.cpus = "0,2-3,7" } == 4)   // capped by the host's 4 cores
        #expect(try cpus { $0.quota = 900_000 } == 4)
        #expect(throws: RuntimeError.self) { try cpus { $0.cpus = "3-1" } }
    }

    /// The agent's deadline: annotation, else BRIG_VM_AGENT_TIMEOUT, else the default (longer
    /// on a host that is itself a VM); bad values name where they came from.
    @Test func agentTimeoutFromAnnotationEnvironmentOrDefault() throws {
        let key = MicroVMDefaults.timeoutAnnotation
        let bare = MicroVMDefaults.fromEnvironment([:], hostCPUs: 2, nested: false)
        let nested = MicroVMDefaults.fromEnvironment([:], hostCPUs: 2, nested: true)
        let env = MicroVMDefaults.fromEnvironment([MicroVMDefaults.timeoutVariable: "45"], hostCPUs: 2, nested: true)
        #expect(try MicroVMPlan.make(spec: spec(), bundle: "/b", defaults: bare).agentTimeout == MicroVMDefaults.agentTimeout)
        #expect(try MicroVMPlan.make(spec: spec(), bundle: "/b", defaults: nested).agentTimeout == MicroVMDefaults.nestedAgentTimeout)
        #expect(MicroVMDefaults.nestedAgentTimeout > MicroVMDefaults.agentTimeout)
        #expect(try MicroVMPlan.make(spec: spec(), bundle: "/b", defaults: env).agentTimeout == 45)
        #expect(try MicroVMPlan.make(spec: spec { $0.annotations = [key: "7.5"] }, bundle: "/b", defaults: env).agentTimeout == 7.5)
        #expect { try MicroVMPlan.make(spec: spec { $0.annotations = [key: "soon"] }, bundle: "/b", defaults: env) } throws: {
            ($0 as? RuntimeError)?.message.contains("annotations[\"\(key)\"]: \"soon\"") == true
        }
        let bad = MicroVMDefaults.fromEnvironment([MicroVMDefaults.timeoutVariable: "-1"], hostCPUs: 2, nested: false)
        #expect { try MicroVMPlan.make(spec: spec(), bundle: "/b", defaults: bad) } throws: {
            ($0 as? RuntimeError)?.message.contains("BRIG_VM_AGENT_TIMEOUT: \"-1\"") == true
        }
        #expect(MicroVMDefaults.hostIsVirtual(cpuinfo: "processor\t: 0\nflags\t\t: fpu vme hypervisor lahf_lm\n"))
        #expect(!MicroVMDefaults.hostIsVirtual(cpuinfo: "flags\t\t: fpu vme svm\n"))
    }

    @Test func refusalsNameTheField() {
        func message(_ edit: @escaping (inout Spec) -> Void) -> String {
            do { _ = try MicroVMPlan.make(spec: spec(edit), bundle: "/b", defaults: defaults); return "" } catch { return error.message }
        }
        let m0 = message { $0.vm = VM(hypervisor: .init(path: "/usr/bin/qemu-system-x86_64", parameters: nil), kernel: .init(path: "/k", parameters: nil, initrd: nil), image: nil) }
        #expect(m0.hasPrefix("vm.hypervisor.path"), "\(m0)")
        let m1 = message { $0.vm = VM(hypervisor: nil, kernel: .init(path: "vmlinux", parameters: nil, initrd: nil), image: nil) }
        #expect(m1.hasPrefix("vm.kernel.path"), "\(m1)")
        let m2 = message { $0.vm = VM(hypervisor: nil, kernel: .init(path: "/k", parameters: nil, initrd: nil), image: .init(path: "d.qcow2", format: "qcow2")) }
        #expect(m2.hasPrefix("vm.image.format"), "\(m2)")
        let m3 = message { $0.vm = VM(hypervisor: nil, kernel: .init(path: "/k", parameters: ["a\nb"], initrd: nil), image: nil) }
        #expect(m3.hasPrefix("vm.kernel.parameters"), "\(m3)")
        let m4 = message { $0.linux = Linux(); $0.linux?.resources = Resources(); $0.linux?.resources?.memory = .init(); $0.linux?.resources?.memory?.limit = 1 << 40 }
        #expect(m4.hasPrefix("linux.resources.memory.limit"), "\(m4)")
    }

    @Test func unsupportedConfigIsRefusedUpFront() {
        var o = CreateOptions(id: "c", bundle: "/b", spec: spec {
            $0.linux = Linux(); $0.linux?.namespaces = [Namespace(type: "ipc", path: "/proc/1/ns/ipc")]
        })
        #expect { try MicroVMBackend.checkSupported(o.spec, options: o) } throws: {
            ($0 as? RuntimeError)?.message.hasPrefix("linux.namespaces[0].path") == true
        }
        // Binds of host paths are shared over virtio-fs (GuestSharesTests), not refused.
        o.spec.linux = nil
        o.spec.mounts = [Mount(destination: "/tmp", type: "tmpfs", source: "tmpfs", options: nil),
                         Mount(destination: "/data", type: "bind", source: "/srv", options: ["rbind"])]
        #expect(throws: Never.self) { try MicroVMBackend.checkSupported(o.spec, options: o) }
        o.preserveFDs = 1
        #expect(throws: RuntimeError.self) { try MicroVMBackend.checkSupported(o.spec, options: o) }
    }
}
