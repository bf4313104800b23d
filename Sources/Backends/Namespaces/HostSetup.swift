import BrigCgroups
import BrigCore
import BrigLinux
import BrigOCI
import BrigSeccomp
import CBrigShim
import Glibc

/// The parent's host-side steps of create: host checks, moving network devices, id mappings.
extension NamespacesBackend {
    /// What depends on the host rather than the config: LSMs (refused where a label is asked for
    /// and the LSM is not enabled, as runc does), ambient capabilities the kernel will not raise
    /// (a debug line) and Intel RDT (a clear error where absent).
    func applyHostChecks(spec: Spec, plan: inout LaunchPlan) throws {
        // A confinement that was asked for and cannot be applied is refused, never dropped
        // silently (runc refuses both).
        if let profile = spec.process?.apparmorProfile, !profile.isEmpty {
            guard HostSecurity.appArmorEnabled else {
                throw RuntimeError(.unsupported, "process.apparmorProfile \"\(profile)\": AppArmor is not enabled on this host")
            }
            plan.process.apparmorProfile = profile
        }
        if let label = spec.process?.selinuxLabel, !label.isEmpty {
            guard HostSecurity.seLinuxEnabled else {
                throw RuntimeError(.unsupported, "process.selinuxLabel \"\(label)\": SELinux is not enabled on this host")
            }
            plan.process.selinuxLabel = label
        }
        if let caps = spec.process?.capabilities, let ambient = caps.ambient, !ambient.isEmpty {
            let raisable = Set(caps.inheritable ?? []).intersection(caps.permitted ?? [])
            let refused = ambient.filter { !raisable.contains($0) }
            if !refused.isEmpty {
                debug?("process.capabilities.ambient: \(refused.joined(separator: ", ")) not raised: the kernel raises an ambient capability only if it is also permitted and inheritable")
            }
        }
        if spec.linux?.intelRdt != nil && !Files.exists("/sys/fs/resctrl/info") {
            throw RuntimeError(.unsupported, "linux.intelRdt: Intel RDT (resctrl) is not available on this host")
        }
    }

    /// linux.netDevices: moves each host interface into the container's new network namespace,
    /// renamed as asked.
    func moveNetDevices(_ devices: [String: NetDevice], into pid: Int32) throws {
        guard !devices.isEmpty else { return }
        let ns = try Files.open("/proc/\(pid)/ns/net", O_RDONLY)
        defer { close(ns) }
        for (name, dev) in devices.sorted(by: { $0.key < $1.key }) {
            let r = brig_link_move(name, ns, dev.name ?? name)
            if r != 0 { throw RuntimeError(.config, "linux.netDevices.\(name): \(SystemError(errno: -r, "move interface into the container"))") }
        }
    }

    func writeMappings(pid: Int32, plan: LaunchPlan) throws {
        func text(_ m: [IDMapping]) -> String { m.map { "\($0.containerID) \($0.hostID) \($0.size)\n" }.joined() }
        do { try Files.write("/proc/\(pid)/uid_map", text(plan.uidMappings)) } catch {
            throw RuntimeError(.config, "linux.uidMappings: \(error)")
        }
        // An unprivileged writer (rootless) may map its own gid only once setgroups is denied.
        if geteuid() != 0 { try? Files.write("/proc/\(pid)/setgroups", "deny") }
        do { try Files.write("/proc/\(pid)/gid_map", text(plan.gidMappings)) } catch {
            throw RuntimeError(.config, "linux.gidMappings: \(error)")
        }
    }
}

/// Which LSMs the host enforces (runc: apparmor.IsEnabled, selinux.GetEnabled).
enum HostSecurity {
    static var appArmorEnabled: Bool {
        ((try? Files.readString("/sys/module/apparmor/parameters/enabled")) ?? "").hasPrefix("Y")
            && Files.exists("/sys/kernel/security/apparmor")
    }
    static var seLinuxEnabled: Bool { Files.exists("/sys/fs/selinux/enforce") }
}
