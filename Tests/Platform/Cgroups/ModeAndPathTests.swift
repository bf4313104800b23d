import BrigCgroups
import Testing

let hybridMountinfo = """
    24 1 0:22 / /sys rw,nosuid shared:7 - sysfs sysfs rw
    31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
    32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
    34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
    35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
    40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
    """
let legacyMountinfo = """
    31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
    35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
    36 31 0:33 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
    """
let unifiedMountinfo = """
    24 1 0:22 / /sys rw,nosuid shared:7 - sysfs sysfs rw
    30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
    """

@Suite struct ModeTests {
    @Test func detectsTheThreeModes() throws {
        #expect(try detectCgroupMode(mountinfo: hybridMountinfo) == .hybrid)
        #expect(try detectCgroupMode(mountinfo: legacyMountinfo) == .legacy)
        #expect(try detectCgroupMode(mountinfo: unifiedMountinfo) == .unified)
        #expect(throws: CgroupError.self) { try detectCgroupMode(mountinfo: "24 1 0:22 / /sys rw - sysfs sysfs rw") }
    }

    @Test func hybridLayoutHasHierarchiesAndOwnPaths() throws {
        let l = try CgroupLayout.parse(mountinfo: hybridMountinfo, procCgroup: """
            9:name=systemd:/user.slice
            4:memory:/process_api/x
            3:cpuset:/
            2:cpu,cpuacct:/a
            0::/user.slice/s
            """)
        #expect(l.mode == .hybrid)
        #expect(l.v1.map(\.controllers) == [["cpu", "cpuacct"], ["cpuset"], ["memory"], ["name=systemd"]])
        #expect(l.hierarchy(for: "cpuacct")?.mountPoint == "/sys/fs/cgroup/cpu,cpuacct")
        #expect(l.hierarchy(for: "cpuacct")?.ownPath == "/a")
        #expect(l.hierarchy(for: "memory")?.ownPath == "/process_api/x")
        #expect(l.unifiedMount == "/sys/fs/cgroup/unified")
        #expect(l.unifiedOwnPath == "/user.slice/s")
    }

    /// The hierarchies `cgroup` mounts are made of: each once, with an escaped mount point
    /// decoded, keyed as the manager's state keys its directories.
    @Test func hierarchiesListEachMountOnceWithItsStateKey() throws {
        let text = hybridMountinfo + "\n60 31 0:39 / /sys/fs/cgroup/net\\040cls rw,relatime - cgroup cgroup rw,net_cls"
        let l = try CgroupLayout.parse(mountinfo: text, procCgroup: "")
        #expect(l.hierarchies.map(\.mountPoint) == ["/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpuset", "/sys/fs/cgroup/memory",
                                                     "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/net cls", "/sys/fs/cgroup/unified"])
        #expect(l.hierarchies.map(\.key) == ["cpu,cpuacct", "cpuset", "memory", "name=systemd", "net_cls", ""])
        #expect(l.hierarchies.map(\.version) == [1, 1, 1, 1, 1, 2])
        let state = try CgroupState.resolve(cgroupsPath: "/c", containerID: "c", systemd: false, layout: l)
        #expect(Set(state.paths.keys) == Set(l.hierarchies.map(\.key)))
        let unified = try CgroupLayout.parse(mountinfo: unifiedMountinfo, procCgroup: "").hierarchies
        #expect(unified.map(\.mountPoint) == ["/sys/fs/cgroup"] && unified.map(\.key) == [""] && unified.map(\.version) == [2])
    }

    @Test func ownPathIsRelativeToTheMountRoot() throws {
        let l = try CgroupLayout.parse(mountinfo: legacyMountinfo, procCgroup: "5:memory:/docker/abc/sub\n4:pids:/p\n")
        #expect(l.mode == .legacy)
        #expect(l.hierarchy(for: "memory")?.ownPath == "/sub")
        #expect(l.unifiedMount == nil)
    }

    @Test func unifiedLayout() throws {
        let l = try CgroupLayout.parse(mountinfo: unifiedMountinfo, procCgroup: "0::/user.slice/session-1.scope\n")
        #expect(l == CgroupLayout.unified(ownPath: "/user.slice/session-1.scope"))
    }

    @Test func liveLayoutParses() throws {
        let l = try CgroupLayout.current()
        #expect(!l.v1.isEmpty || l.mode == .unified)
    }
}

@Suite struct PathTests {
    let layout = CgroupLayout(mode: .hybrid,
                              v1: [V1Hierarchy(controllers: ["memory"], mountPoint: "/sys/fs/cgroup/memory", ownPath: "/process_api/x"),
                                   V1Hierarchy(controllers: ["cpu", "cpuacct"], mountPoint: "/sys/fs/cgroup/cpu,cpuacct")],
                              unifiedMount: "/sys/fs/cgroup/unified", unifiedOwnPath: "/u")

    func paths(_ p: String?, systemd: Bool = false) throws -> [String: String] {
        try CgroupState.resolve(cgroupsPath: p, containerID: "c1", systemd: systemd, layout: layout, root: "/R").paths
    }

    @Test func absolute() throws {
        #expect(try paths("/a//b/./c") == ["memory": "/R/memory/a/b/c", "cpu,cpuacct": "/R/cpu,cpuacct/a/b/c", "": "/R/unified/a/b/c"])
    }

    @Test func controllerPathsListCoMountedControllersSeparately() throws {
        let state = try CgroupState.resolve(cgroupsPath: "/x", containerID: "c1", systemd: false, layout: layout, root: "/R")
        #expect(state.controllerPaths == ["memory": "/R/memory/x", "cpu": "/R/cpu,cpuacct/x", "cpuacct": "/R/cpu,cpuacct/x", "": "/R/unified/x"])
    }

    @Test func relativeToOwnCgroupPerHierarchy() throws {
        #expect(try paths("a/b") == ["memory": "/R/memory/process_api/x/a/b", "cpu,cpuacct": "/R/cpu,cpuacct/a/b", "": "/R/unified/u/a/b"])
    }

    @Test func emptyIsTheContainerIDRelative() throws {
        #expect(try paths("")["memory"] == "/R/memory/process_api/x/c1")
        #expect(try paths(nil)["cpu,cpuacct"] == "/R/cpu,cpuacct/c1")
    }

    /// runc's fs2 rule: on a unified host a relative path (or none) goes below the parent of the
    /// caller's cgroup, whose own cgroup holds processes (containerd.service, a session scope).
    @Test func unifiedRelativeIsBelowTheCallersParent() throws {
        func v2(_ own: String, _ p: String?) throws -> String? {
            try CgroupState.resolve(cgroupsPath: p, containerID: "c1", systemd: false,
                                    layout: .unified(ownPath: own), root: "/R").paths[""]
        }
        #expect(try v2("/system.slice/containerd.service", nil) == "/R/system.slice/c1")
        #expect(try v2("/system.slice/containerd.service", "k8s/pod1/c") == "/R/system.slice/k8s/pod1/c")
        #expect(try v2("/user.slice", "x") == "/R/x")
        #expect(try v2("/", nil) == "/R/c1")
        #expect(try v2("/system.slice/containerd.service", "/abs/c") == "/R/abs/c")
        #expect(CgroupPath.parent("/a/b/c") == "/a/b" && CgroupPath.parent("/a") == "/" && CgroupPath.parent("/") == "/")
    }

    @Test func dotDotIsRejected() {
        expectCgroupError("linux.cgroupsPath", "..") { _ = try paths("/a/../b") }
        expectCgroupError("linux.cgroupsPath", "..") { _ = try paths("../x") }
    }

    @Test func systemdForm() throws {
        #expect(try CgroupPath.systemdPath("system.slice:brig:abc") == "/system.slice/brig-abc.scope")
        #expect(try CgroupPath.systemdPath("a-b.slice:p:n") == "/a.slice/a-b.slice/p-n.scope")
        #expect(try CgroupPath.systemdPath("-.slice:p:n") == "/p-n.scope")
        #expect(try CgroupPath.systemdPath(":p:n") == "/system.slice/p-n.scope")
        #expect(try paths("user.slice:brig:x", systemd: true)["memory"] == "/R/memory/user.slice/brig-x.scope")
        #expect(try paths(nil, systemd: true)["memory"] == "/R/memory/system.slice/brig-c1.scope")
        expectCgroupError("slice:prefix:name") { _ = try paths("/a/b", systemd: true) }
        expectCgroupError("invalid slice name") { _ = try paths("a--b.slice:p:n", systemd: true) }
        expectCgroupError("invalid slice name") { _ = try paths("nosuffix:p:n", systemd: true) }
    }

    @Test func systemdNotRunningIsAClearError() {
        #expect(systemdRunning(runDirectory: "/nonexistent/run/systemd/system") == false)
        #expect(systemdRunning(runDirectory: "/") == true)
        #expect(CgroupError.systemdNotRunning.description.contains("systemd is not running"))
    }

    @Test func liveSystemdFlagChecksForSystemd() throws {
        if systemdRunning() {
            print("systemd is running here: the not-running error cannot be observed")
            _ = try CgroupPath.parse(cgroupsPath: nil, containerID: "x", systemd: true)
        } else {
            expectCgroupError("--systemd-cgroup", "systemd is not running") {
                _ = try makeCgroupManager(cgroupsPath: "system.slice:brig:x", containerID: "x", systemd: true)
            }
        }
    }
}
