import BrigCgroups
import BrigCore
import BrigLinux
import BrigOCI
import FoundationEssentials
import Glibc
import Testing
@testable import BrigMicroVM

/// A microvm container's host cgroup (the monitor/VMM's): placed where the namespaces backend
/// would place the container, recorded before it is made, found again from the record.
@Suite struct HostCgroupTests {
    static let unified = """
        24 1 0:22 / /sys rw,nosuid shared:7 - sysfs sysfs rw
        30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
        """
    static let hybrid = """
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        33 31 0:30 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
        """

    func options(_ id: String, cgroupsPath: String?) -> CreateOptions {
        var linux = Linux()
        linux.cgroupsPath = cgroupsPath
        return CreateOptions(id: id, bundle: "/b", spec: Spec(linux: linux))
    }

    func plan(_ o: CreateOptions, _ mountinfo: String, own: String) throws -> HostCgroup {
        try HostCgroup.plan(o) { try CgroupLayout.parse(mountinfo: mountinfo, procCgroup: own) }
    }

    /// An absolute cgroupsPath is the cgroup on every hierarchy; nothing exists yet, so the
    /// record made before anything lists every directory as one create will make (what a
    /// `delete --force` after a killed brig removes), and no device rules are applied.
    @Test func anAbsolutePathIsRecordedAsToBeMadeOnEveryHierarchy() throws {
        let path = "/brig-test-\(getpid())-absent/vm"
        let h = try plan(options("c1", cgroupsPath: path), Self.hybrid, own: "0::/\n5:freezer:/\n4:memory:/")
        let r = h.prospective
        #expect(r.paths == ["freezer": "/sys/fs/cgroup/freezer" + path, "memory": "/sys/fs/cgroup/memory" + path,
                            "": "/sys/fs/cgroup/unified" + path])
        #expect(Set(r.created) == Set(r.paths.values.flatMap { [String($0.dropLast(3)), $0] }))
        #expect(r.joinedExisting == false)
        #expect(h.manager.skipDevices)
    }

    /// No cgroupsPath: the container id below the parent of the caller's cgroup on a unified
    /// host, as the namespaces backend (runc's fs2 driver) places a container.
    @Test func noPathIsTheDefaultPlacementByID() throws {
        let h = try plan(options("vm-\(getpid())", cgroupsPath: nil), Self.unified, own: "0::/system.slice/containerd.service")
        #expect(h.manager.state.paths == ["": "/sys/fs/cgroup/system.slice/vm-\(getpid())"])
    }

    /// A cgroupsPath the driver cannot take names the field.
    @Test func aBadPathNamesTheField() throws {
        #expect { try plan(options("c", cgroupsPath: "/a/../escape"), Self.unified, own: "0::/") } throws: { e in
            "\(e)".contains("linux.cgroupsPath")
        }
    }

    /// The record's handle keeps the cgroup (so every later verb finds it); a record written
    /// by an older brig has none, and nothing is looked for.
    @Test func theRecordNamesTheCgroupAndAnOldRecordNone() throws {
        let h = try plan(options("c", cgroupsPath: "/brig-test-\(getpid())-absent"), Self.unified, own: "0::/")
        let handle = MicroVMHandle(mode: "kvm", stateDir: "/run/x/c", guestPid: 1, cgroup: h.prospective)
        let decoded = try JSONDecoder().decode(MicroVMHandle.self, from: Data(try JSONEncoder().encode(handle)))
        #expect(decoded == handle)
        let old = try JSONDecoder().decode(MicroVMHandle.self, from: Data(#"{"mode":"kvm","stateDir":"/d","guestPid":3}"#.utf8))
        #expect(old.cgroup == nil)
        let record = { (handle: MicroVMHandle) in
            ContainerRecord(id: "c", handle: .microvm(handle), bundle: "/b", rootfs: "/b/rootfs", pid: 0, pidStartTime: 0,
                            created: Timestamp.now(), owner: "", annotations: nil, hooks: nil)
        }
        #expect(HostCgroup.of(record(old)) == nil)
        #expect(HostCgroup.of(record(handle))?.manager.state.paths == ["": "/sys/fs/cgroup/brig-test-\(getpid())-absent"])
    }

    /// `exec --cgroup`: a path out of the container's cgroup is refused on the host as runc
    /// refuses it ("not a sub cgroup path"); a sub path goes on to the guest's agent.
    @Test func execCgroupOutOfTheContainerIsRefused() throws {
        let r = ContainerRecord(id: "c", handle: .microvm(MicroVMHandle(mode: "kvm", stateDir: "/nonexistent", guestPid: 1)),
                                bundle: "/b", rootfs: "/b/rootfs", pid: 0, pidStartTime: 0, created: Timestamp.now(), owner: "",
                                annotations: nil, hooks: nil)
        var o = ExecOptions(process: Process(args: ["/bin/true"]))
        try MicroVMBackend.checkExec(o, record: r)
        o.subCgroups = ["": "../escape"]
        #expect { try MicroVMBackend.checkExec(o, record: r) } throws: { "\($0)".contains("sub cgroup") }
        o.subCgroups = ["memory": "../../x"]
        #expect { try MicroVMBackend.checkExec(o, record: r) } throws: { "\($0)".contains("sub cgroup") }
        o.subCgroups = ["": "sub/deeper", "memory": "sub"]
        try MicroVMBackend.checkExec(o, record: r)
    }
}
