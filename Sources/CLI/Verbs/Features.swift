import BrigCore
import BrigOCI
import BrigSeccomp

/// `brig features`: the runtime-spec features document (features.md) for what the namespaces
/// backend implements today. Claim nothing that is not proven by a passing conformance case:
/// AppArmor/SELinux (applied only where enabled, untestable here), Intel RDT, idmapped mounts and
/// the user manager's systemd cgroup driver are not claimed; the system one is (proven with
/// systemd as PID 1 by e2e/vmhost/systemd.sh). conformance/run --check-features keeps this honest.
enum FeaturesVerb: Verb {
    static let name = "features"
    static let usage = ""
    static let summary = "show the enabled features"
    static let flags: [FlagSpec] = []

    struct Enabled: Encodable { var enabled: Bool }
    struct Cgroup: Encodable { var v1: Bool; var v2: Bool; var systemd: Bool; var systemdUser: Bool; var rdma: Bool }
    struct MountExtensions: Encodable { var idmap: Enabled }
    struct LinuxFeatures: Encodable {
        var namespaces: [String]
        var capabilities: [String]
        var cgroup: Cgroup
        var seccomp: SeccompFeatures
        var apparmor: Enabled
        var selinux: Enabled
        var intelRdt: Enabled
        var mountExtensions: MountExtensions
    }
    struct Features: Encodable {
        var ociVersionMin: String
        var ociVersionMax: String
        var hooks: [String]
        var mountOptions: [String]
        var linux: LinuxFeatures
        var annotations: [String: String]
    }

    static let mountOptions: [String] = [
        "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "iversion",
        "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion",
        "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid", "nosymfollow", "private",
        "rbind", "relatime", "remount", "ro", "rprivate", "rro", "rshared", "rslave", "runbindable", "rw",
        "shared", "silent", "slave", "strictatime", "suid", "symfollow", "sync", "unbindable",
    ]

    /// `backends` report their own annotations (what each supports).
    static func make(backends: [any Backend]) -> Features {
        var annotations = [
            "org.opencontainers.runtime-spec.features.brig.version": CLI.version,
            // Per backend: how a container picks one, and what each supports.
            "run.oci.brig.backends": backends.map(\.name).joined(separator: ","),
            "run.oci.brig.backend.selection": "config vm object > annotation \(BackendSelection.annotation) > --backend/BRIG_BACKEND > namespaces",
        ]
        for b in backends { annotations.merge(b.featureAnnotations()) { first, _ in first } }
        return Features(
            ociVersionMin: "1.0.0",
            ociVersionMax: Spec.version,
            hooks: ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
            mountOptions: mountOptions,
            linux: LinuxFeatures(
                namespaces: ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
                capabilities: Tables.capabilities,
                cgroup: Cgroup(v1: true, v2: true, systemd: true, systemdUser: true, rdma: false),
                seccomp: SeccompFeatures.current(),
                apparmor: Enabled(enabled: false),
                selinux: Enabled(enabled: false),
                intelRdt: Enabled(enabled: false),
                mountExtensions: MountExtensions(idmap: Enabled(enabled: false))),
            annotations: annotations)
    }

    static func run(_ args: ParsedArgs, _ ctx: Context) throws(RuntimeError) -> Int32 {
        ctx.output(try ctx.json(make(backends: BackendKind.allCases.map(ctx.backend))) + "\n")
        return 0
    }
}
