import BrigCore
import BrigOCI

/// Where brig finds the guest kernel and the agent's initramfs when the config's `vm` object
/// does not say. Installed by `scripts/install-guest.sh`; overridable for development.
public struct MicroVMDefaults: Sendable, Equatable {
    public var kernel: String
    public var initrd: String
    /// Host cores, the upper bound for vCPUs.
    public var hostCPUs: Int
    /// Seconds from starting the VM until its agent must have answered, unless the container's
    /// annotation or `BRIG_VM_AGENT_TIMEOUT` (`agentTimeoutSetting`, checked by the plan) says.
    public var agentTimeout: Double
    public var agentTimeoutSetting: String?
    public static let kernelPath = "/usr/lib/brig/vmlinuz"
    public static let initrdPath = "/usr/lib/brig/brig-agent.initrd"
    /// A guest boots in well under a second on hardware; when brig itself runs in a VM the guest
    /// is nested (every exit goes through two hypervisors, or is emulated) and takes tens of seconds.
    public static let agentTimeout: Double = 30
    public static let nestedAgentTimeout: Double = 180
    public static let timeoutVariable = "BRIG_VM_AGENT_TIMEOUT"
    public static let timeoutAnnotation = "run.oci.brig.agent-timeout"

    public init(kernel: String = kernelPath, initrd: String = initrdPath, hostCPUs: Int = 1,
                agentTimeout: Double = agentTimeout, agentTimeoutSetting: String? = nil) {
        self.kernel = kernel; self.initrd = initrd; self.hostCPUs = hostCPUs
        self.agentTimeout = agentTimeout; self.agentTimeoutSetting = agentTimeoutSetting
    }

    /// The defaults, with `BRIG_VM_KERNEL` / `BRIG_VM_INITRD` / `BRIG_VM_AGENT_TIMEOUT` from the
    /// environment applied. `nested`: this host is itself a VM (the `hypervisor` CPU flag).
    public static func fromEnvironment(_ env: [String: String], hostCPUs: Int, nested: Bool) -> MicroVMDefaults {
        MicroVMDefaults(kernel: env["BRIG_VM_KERNEL"] ?? kernelPath, initrd: env["BRIG_VM_INITRD"] ?? initrdPath, hostCPUs: hostCPUs,
                        agentTimeout: nested ? nestedAgentTimeout : agentTimeout, agentTimeoutSetting: env[timeoutVariable])
    }

    /// The agent timeout for a container: its annotation, else the environment, else the default.
    func agentTimeout(annotations: [String: String]?) throws(RuntimeError) -> Double {
        let key = Self.timeoutAnnotation
        if let v = annotations?[key] { return try Self.seconds(v, what: "annotations[\"\(key)\"]") }
        if let v = agentTimeoutSetting { return try Self.seconds(v, what: Self.timeoutVariable) }
        return agentTimeout
    }

    /// A timeout in seconds: positive, at most an hour.
    static func seconds(_ text: String, what: String) throws(RuntimeError) -> Double {
        guard let v = Double(text), v.isFinite, v > 0, v <= 3600 else {
            throw RuntimeError(.config, "\(what): \"\(text)\" is not a number of seconds between 0 and 3600")
        }
        return v
    }

    /// Whether this host is a VM itself (its guests are nested).
    public static func hostIsVirtual(cpuinfo: String) -> Bool {
        cpuinfo.split(separator: "\n").contains { $0.hasPrefix("flags") && $0.split(separator: " ").contains("hypervisor") }
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
    /// Seconds the monitor waits for the guest agent's hello (annotation, environment, default).
    public var agentTimeout: Double
    /// The engine's network namespace to connect (set by create after discovery; nil: loopback only).
    public var network: GuestNetwork?
    /// Bind mount sources the VMM shares over virtio-fs (set by create, kvm transport).
    public var shares: [SharedPath] = []

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
        let timeout = try defaults.agentTimeout(annotations: spec.annotations)
        return MicroVMPlan(kernel: kernel, initrd: initrd, kernelParameters: parameters, memoryBytes: memory,
                           cpus: cpus, rootDisk: root, readOnlyRoot: spec.root?.readonly ?? false, agentTimeout: timeout)
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
            + (readOnlyRoot ? ["brig.root=ro"] : [])
            + (shares.isEmpty ? [] : ["brig.fs=\(GuestShares.tag)"]) + kernelParameters).joined(separator: " ")
    }
}
