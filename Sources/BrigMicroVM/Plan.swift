import BrigCore
import BrigOCI

/// Where brig finds the guest kernel and the agent's initramfs when the config's `vm` object
/// does not say. Installed by `scripts/install-guest.sh`; overridable for development.
public struct MicroVMDefaults: Sendable, Equatable {
    public var kernel: String
    public var initrd: String
    /// Host cores, the upper bound for vCPUs.
    public var hostCPUs: Int
    public static let kernelPath = "/usr/lib/brig/vmlinuz"
    public static let initrdPath = "/usr/lib/brig/brig-agent.initrd"

    public init(kernel: String = kernelPath, initrd: String = initrdPath, hostCPUs: Int = 1) {
        self.kernel = kernel; self.initrd = initrd; self.hostCPUs = hostCPUs
    }

    /// The defaults, with `BRIG_VM_KERNEL` / `BRIG_VM_INITRD` from the environment applied.
    public static func fromEnvironment(_ env: [String: String], hostCPUs: Int) -> MicroVMDefaults {
        MicroVMDefaults(kernel: env["BRIG_VM_KERNEL"] ?? kernelPath, initrd: env["BRIG_VM_INITRD"] ?? initrdPath, hostCPUs: hostCPUs)
    }
}

/// What a microvm container needs from its config, worked out without touching the host:
/// the guest kernel, RAM and vCPUs, and how the rootfs reaches the guest.
public struct MicroVMPlan: Sendable, Equatable, Codable {
    public enum RootDisk: Sendable, Equatable, Codable {
        /// `vm.image`: a raw disk image used as is.
        case image(path: String)
        /// The bundle's rootfs directory, turned into an ext4 image.
        case directory(path: String)
    }
    public var kernel: String
    public var initrd: String
    public var kernelParameters: [String]
    public var memoryBytes: UInt64
    public var cpus: Int
    public var rootDisk: RootDisk
    public var readOnlyRoot: Bool

    /// Guest RAM beyond the container's memory limit: the kernel, the agent, page cache.
    public static let overheadBytes: UInt64 = 128 << 20
    public static let defaultMemoryBytes: UInt64 = 256 << 20
    public static let maxMemoryBytes: UInt64 = 64 << 30

    public static func make(spec: Spec, bundle: String, defaults: MicroVMDefaults) throws(RuntimeError) -> MicroVMPlan {
        let vm = spec.vm
        if let h = vm?.hypervisor {
            // brig is its own VMM: a hypervisor path can only name brig.
            let base = h.path.split(separator: "/").last.map(String.init) ?? h.path
            guard base == "brig" || base == "brig-vmm" else {
                throw RuntimeError(.unsupported, "vm.hypervisor.path: \(h.path) is not supported; brig is the VMM (omit vm.hypervisor)")
            }
        }
        let kernel = vm?.kernel.path ?? defaults.kernel
        guard kernel.hasPrefix("/") else {
            throw RuntimeError(.config, "vm.kernel.path: \"\(kernel)\" must be an absolute path")
        }
        // The agent lives in the initramfs: the default one unless the config names its own.
        let initrd = vm?.kernel.initrd ?? defaults.initrd
        let parameters = vm?.kernel.parameters ?? []
        for p in parameters where p.contains(where: { $0 == "\n" || $0 == "\0" }) {
            throw RuntimeError(.config, "vm.kernel.parameters: \"\(p)\" contains a newline or NUL")
        }

        let root: RootDisk
        if let image = vm?.image {
            guard image.format == "raw" else {
                throw RuntimeError(.unsupported, "vm.image.format: \"\(image.format)\" is not supported (brig attaches raw images holding an ext4 filesystem)")
            }
            root = .image(path: absolute(image.path, bundle: bundle))
        } else {
            guard let path = spec.root?.path, !path.isEmpty else { throw RuntimeError(.config, "root.path: required") }
            root = .directory(path: absolute(path, bundle: bundle))
        }

        var memory = defaultMemoryBytes
        if let limit = spec.linux?.resources?.memory?.limit, limit > 0 {
            let mib: UInt64 = 1 << 20
            let rounded = (UInt64(limit) + mib - 1) / mib * mib
            memory = max(defaultMemoryBytes, rounded + overheadBytes)
            guard memory <= maxMemoryBytes else {
                throw RuntimeError(.config, "linux.resources.memory.limit: \(limit) bytes is more than a microvm can have (\(maxMemoryBytes >> 30) GiB)")
            }
        }
        let cpus = min(max(1, try vcpus(spec.linux?.resources?.cpu)), max(1, defaults.hostCPUs))
        return MicroVMPlan(kernel: kernel, initrd: initrd, kernelParameters: parameters, memoryBytes: memory,
                           cpus: cpus, rootDisk: root, readOnlyRoot: spec.root?.readonly ?? false)
    }

    /// vCPUs for a CPU resource: ceil(quota/period), else the size of the cpuset, else 1.
    static func vcpus(_ cpu: Resources.CPU?) throws(RuntimeError) -> Int {
        guard let cpu else { return 1 }
        if let quota = cpu.quota, quota > 0 {
            let period = Int64(cpu.period ?? 100_000)
            guard period > 0 else { throw RuntimeError(.config, "linux.resources.cpu.period: must be positive") }
            return Int(min(255, (quota + period - 1) / period))
        }
        if let set = cpu.cpus, !set.isEmpty {
            var n = 0
            for part in set.split(separator: ",") {
                let ends = part.split(separator: "-").map { Int($0.filter { $0 != " " }) }
                guard let lo = ends.first ?? nil else { throw RuntimeError(.config, "linux.resources.cpu.cpus: bad list \"\(set)\"") }
                let hi = ends.count > 1 ? (ends[1] ?? -1) : lo
                guard hi >= lo, ends.count <= 2 else { throw RuntimeError(.config, "linux.resources.cpu.cpus: bad list \"\(set)\"") }
                n += hi - lo + 1
            }
            return min(n, 255)
        }
        return 1
    }

    static func absolute(_ p: String, bundle: String) -> String { p.hasPrefix("/") ? p : bundle + "/" + p }

    /// The guest kernel command line: console, the agent as init, and the config's parameters.
    public func cmdline(transport: String = "vsock") -> String {
        (["console=ttyS0", "reboot=k", "panic=-1", "pci=off", "quiet", "brig.transport=\(transport)"]
            + (readOnlyRoot ? ["brig.root=ro"] : []) + kernelParameters).joined(separator: " ")
    }
}
