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

    @Test(arguments: [("/a//b/./c/", "/a/b/c"), ("/../..", "/"), ("a/../../b", "b"), ("/x/y/..", "/x")])
    func cleanPaths(input: String, output: String) { #expect(LaunchPlan.clean(input) == output) }
}
