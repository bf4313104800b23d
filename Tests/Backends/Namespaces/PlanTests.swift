import BrigCgroups
import BrigCore
import BrigLinux
import BrigNamespaces
import BrigOCI
import CBrigShim
import Testing

@Suite struct LaunchPlanTests {
    func plan(_ spec: Spec) throws -> LaunchPlan {
        try LaunchPlan.make(spec: spec, id: "c", bundle: "/bundles/b", noPivot: false, preserveFDs: 0, cgroups: [])
    }

    @Test func defaultSpecConversion() throws {
        let p = try plan(DefaultSpec.make())
        #expect(p.rootfs == "/bundles/b/rootfs")
        #expect(p.readonlyRoot)
        #expect(Set(p.newNamespaces) == ["pid", "network", "ipc", "uts", "mount"])
        #expect(p.joinNamespaces.isEmpty)
        #expect(p.rootPropagation == UInt(BRIG_MS_SLAVE | BRIG_MS_REC))
        #expect(p.devices.map(\.path) == ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"])
        let caps = try #require(p.process.capabilities)
        // CAP_KILL 5, CAP_NET_BIND_SERVICE 10, CAP_AUDIT_WRITE 29
        #expect(caps.bounding == (1 << 5) | (1 << 10) | (1 << 29))
        #expect(caps.inheritable == 0 && caps.ambient == 0)
        #expect(p.process.rlimits == [[7, 1024, 1024]])
        #expect(p.process.noNewPrivileges)
        let proc = try #require(p.mounts.first)
        #expect(proc.kind == .regular && proc.type == "proc")
        let cg = try #require(p.mounts.first { $0.destination == "/sys/fs/cgroup" })
        #expect(cg.kind == .cgroup && cg.options.readonly)
    }

    /// `runc spec --rootless` maps only the user to root: a process uid/gid outside the mappings
    /// is refused up front, naming the field (runc: "cannot set uid to unmapped user").
    @Test func unmappedProcessIDsAreRefused() throws {
        var s = DefaultSpec.make(rootless: true, uid: 1000, gid: 1000)
        _ = try plan(s)
        s.process?.user = User(uid: 1000, gid: 0)
        #expect(throws: ConfigError("process.user.uid", "1000 is not mapped in the container's user namespace (linux.uidMappings)")) { try plan(s) }
        s.process?.user = User(uid: 0, gid: 5)
        #expect(throws: ConfigError("process.user.gid", "5 is not mapped in the container's user namespace (linux.gidMappings)")) { try plan(s) }
        s.linux?.gidMappings = [IDMapping(containerID: 0, hostID: 100000, size: 65536)]
        _ = try plan(s)
    }

    @Test func bindSourcesJoinsDevicesAndPropagation() throws {
        var s = DefaultSpec.make()
        s.root = Root(path: "/abs/root")
        s.mounts = [Mount(destination: "/data/../data//x/", source: "relative/src", options: ["rbind", "ro"]),
                    Mount(destination: "/abs", type: "bind", source: "/host/abs")]
        s.linux?.namespaces = [Namespace(type: "network", path: "/proc/1/ns/net"), Namespace(type: "mount")]
        s.linux?.devices = [Device(type: "c", path: "/dev/null", major: 1, minor: 3, fileMode: 0o600),
                            Device(type: "b", path: "/dev/sda", major: 8, minor: 0)]
        s.linux?.rootfsPropagation = "rshared"
        let p = try plan(s)
        #expect(p.rootfs == "/abs/root")
        #expect(p.mounts[0].destination == "/data/x")
        #expect(p.mounts[0].source == "/bundles/b/relative/src")
        #expect(p.mounts[0].kind == .bind && p.mounts[0].options.recursive && p.mounts[0].options.readonly)
        #expect(p.mounts[1].kind == .bind && p.mounts[1].source == "/host/abs")
        #expect(p.joinNamespaces == [LaunchPlan.JoinNamespace(kind: "network", path: "/proc/1/ns/net")])
        #expect(p.newNamespaces == ["mount"])
        #expect(p.has(.network) && p.has(.mount) && !p.has(.pid))
        #expect(p.devices.first { $0.path == "/dev/null" }?.mode == 0o600)
        #expect(p.devices.last?.path == "/dev/sda")
        #expect(p.rootPropagation == UInt(BRIG_MS_SHARED | BRIG_MS_REC))
    }

    /// With a user namespace and a new mount namespace, bind sources outside the rootfs are
    /// opened on the host side (stage 1); everything else is mounted by path as before.
    @Test func hostOpenedBindsOnlyWithAUserNamespace() throws {
        var s = DefaultSpec.make()
        s.root = Root(path: "/abs/root")
        s.mounts = [Mount(destination: "/proc", type: "proc", source: "proc"),
                    Mount(destination: "/a", type: "bind", source: "/host/a", options: ["rbind"]),
                    Mount(destination: "/in", source: "/abs/root/etc", options: ["bind"]),
                    Mount(destination: "/root", source: "/abs/root", options: ["bind"]),
                    Mount(destination: "/sibling", source: "/abs/rootfs2", options: ["bind"]),
                    Mount(destination: "/t", type: "tmpfs", source: "tmpfs")]
        #expect(try plan(s).hostOpenedBinds == [])
        s.linux?.namespaces?.append(Namespace(type: "user"))
        var p = try plan(s)
        #expect(p.hostOpenedBinds == [1, 4])
        #expect(p.detachedPropagation == UInt64(BRIG_MS_SLAVE))
        s.linux?.rootfsPropagation = "rprivate"
        #expect(try plan(s).detachedPropagation == UInt64(BRIG_MS_PRIVATE))
        s.linux?.rootfsPropagation = "rshared"
        #expect(try plan(s).detachedPropagation == 0)
        // A joined user namespace counts; a joined mount namespace does not (nothing is set up there).
        let namespaces = s.linux?.namespaces ?? []
        s.linux?.namespaces = namespaces.map { $0.type == "user" ? Namespace(type: "user", path: "/proc/1/ns/user") : $0 }
        #expect(try plan(s).hostOpenedBinds == [1, 4])
        s.linux?.namespaces = namespaces.map { $0.type == "mount" ? Namespace(type: "mount", path: "/proc/1/ns/mnt") : $0 }
        p = try plan(s)
        #expect(p.hostOpenedBinds == [])
    }

    /// crun's rootless fallback: a sysfs (read-only) or mqueue the kernel refuses in a user
    /// namespace that owns no network / ipc namespace is bound from the host's instance.
    @Test func hostInstanceForRefusedSysfsAndMqueue() throws {
        var s = DefaultSpec.make()
        s.mounts = [Mount(destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "ro"]),
                    Mount(destination: "/dev/mqueue", type: "mqueue", source: "mqueue"),
                    Mount(destination: "/rwsys", type: "sysfs", source: "sysfs"),
                    Mount(destination: "/proc", type: "proc", source: "proc")]
        let host = [MountInfo(root: "/", mountPoint: "/elsewhere", fsType: "mqueue"),
                    MountInfo(root: "/", mountPoint: "/dev/mqueue", fsType: "mqueue"),
                    MountInfo(root: "/sub", mountPoint: "/x", fsType: "mqueue")]
        func fallbacks(_ p: LaunchPlan, _ mounts: [MountInfo] = host) -> [String?] {
            p.mounts.map { p.hostInstance(for: $0, hostMounts: mounts) }
        }
        // With their own network and ipc namespaces (and without a user namespace): none.
        #expect(fallbacks(try plan(s)) == [nil, nil, nil, nil])
        s.linux?.namespaces?.append(Namespace(type: "user"))
        #expect(fallbacks(try plan(s)) == [nil, nil, nil, nil])
        s.linux?.namespaces?.removeAll { $0.type == "network" || $0.type == "ipc" }
        let p = try plan(s)
        #expect(fallbacks(p) == ["/sys", "/dev/mqueue", nil, nil])  // a read-write sysfs is not replaced
        #expect(fallbacks(p, Array(host.prefix(1)))[1] == "/elsewhere")
        #expect(fallbacks(p, [])[1] == nil)
    }

    @Test(arguments: [("/a//b/./c/", "/a/b/c"), ("/../..", "/"), ("a/../../b", "b"), ("/x/y/..", "/x")])
    func cleanPaths(input: String, output: String) { #expect(LaunchPlan.clean(input) == output) }
}

@Suite struct ExecCgroupTests {
    let state = CgroupState(mode: .hybrid, paths: ["cpu,cpuacct": "/cg/cpu/c1", "memory": "/cg/memory/c1", "": "/cg/unified/c1"])

    /// `exec --cgroup`: "" goes below the container's cgroup in every hierarchy, a controller in
    /// the hierarchy that has it; anything that leaves the container's cgroup is refused.
    func refusal(_ sub: [String: String]) -> String? {
        do { _ = try NamespacesBackend.execCgroup(state, sub: sub); return nil } catch { return error.message }
    }

    @Test func subCgroupsStayBelowTheContainers() throws {
        #expect(try NamespacesBackend.execCgroup(state, sub: [:]) == state)
        #expect(try NamespacesBackend.execCgroup(state, sub: ["": "s/t"]).paths == ["cpu,cpuacct": "/cg/cpu/c1/s/t", "memory": "/cg/memory/c1/s/t", "": "/cg/unified/c1/s/t"])
        #expect(try NamespacesBackend.execCgroup(state, sub: ["cpuacct": "x", "memory": "/y/./"]).paths == ["cpu,cpuacct": "/cg/cpu/c1/x", "memory": "/cg/memory/c1/y", "": "/cg/unified/c1"])
        #expect(refusal(["": "../c2"]) == "--cgroup: ../c2 is not a sub cgroup path")
        #expect(refusal(["memory": "../c1x"]) == "--cgroup: ../c1x is not a sub cgroup path")
        #expect(refusal(["pids": "x"]) == "--cgroup: unknown controller pids (not one of the container's hierarchies)")
    }
}
