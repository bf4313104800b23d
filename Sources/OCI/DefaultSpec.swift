// The config.json that `brig spec` writes: the same content as `runc spec`, so that people who
// know runc's default get the same container.

public enum DefaultSpec {
    public static let defaultCapabilities = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

    public static let maskedPaths = [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
    ]

    public static let readonlyPaths = [
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
    ]

    /// `runc spec`'s default. `cgroupNamespace`: add a cgroup namespace, as runc does on a pure
    /// cgroup v2 host (its Example spec), so the container sees its own cgroup as the root there.
    public static func make(rootless: Bool = false, uid: UInt32 = 0, gid: UInt32 = 0, cgroupNamespace: Bool = false) -> Spec {
        var process = Process(
            terminal: true, user: User(uid: 0, gid: 0), args: ["sh"],
            env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            cwd: "/",
            capabilities: Capabilities(bounding: defaultCapabilities, effective: defaultCapabilities,
                                       permitted: defaultCapabilities),
            rlimits: [Rlimit(type: "RLIMIT_NOFILE", hard: 1024, soft: 1024)],
            noNewPrivileges: true)
        process.terminal = true
        var mounts: [Mount] = [
            Mount(destination: "/proc", type: "proc", source: "proc"),
            Mount(destination: "/dev", type: "tmpfs", source: "tmpfs",
                  options: ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            Mount(destination: "/dev/pts", type: "devpts", source: "devpts",
                  options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
            Mount(destination: "/dev/shm", type: "tmpfs", source: "shm",
                  options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            Mount(destination: "/dev/mqueue", type: "mqueue", source: "mqueue",
                  options: ["nosuid", "noexec", "nodev"]),
            Mount(destination: "/sys", type: "sysfs", source: "sysfs",
                  options: ["nosuid", "noexec", "nodev", "ro"]),
            Mount(destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup",
                  options: ["nosuid", "noexec", "nodev", "relatime", "ro"]),
        ]
        var linux = Linux()
        linux.maskedPaths = maskedPaths
        linux.readonlyPaths = readonlyPaths
        if rootless {
            linux.namespaces = ["pid", "ipc", "uts", "mount", "user"].map { Namespace(type: $0) }
            linux.uidMappings = [IDMapping(containerID: 0, hostID: uid, size: 1)]
            linux.gidMappings = [IDMapping(containerID: 0, hostID: gid, size: 1)]
            mounts.removeAll { $0.destination == "/sys" || $0.destination == "/sys/fs/cgroup" }
            mounts.append(Mount(destination: "/sys", type: "none", source: "/sys",
                                options: ["rbind", "nosuid", "noexec", "nodev", "ro"]))
            if let i = mounts.firstIndex(where: { $0.destination == "/dev/pts" }) {
                mounts[i].options?.removeAll { $0 == "gid=5" }
            }
        } else {
            var resources = Resources()
            resources.devices = [Resources.DeviceCgroupRule(allow: false, access: "rwm")]
            linux.resources = resources
            // runc 1.1's namespaces: a cgroup namespace only on a unified host (below).
            linux.namespaces = ["pid", "network", "ipc", "uts", "mount"].map { Namespace(type: $0) }
        }
        if cgroupNamespace { linux.namespaces?.append(Namespace(type: "cgroup")) }
        return Spec(process: process, root: Root(path: "rootfs", readonly: true), hostname: "brig",
                    mounts: mounts, linux: linux)
    }
}
