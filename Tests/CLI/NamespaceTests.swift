import BrigLinux
import BrigOCI
import FoundationEssentials
import Glibc
import Testing

@Suite("namespaces", .enabled(if: Harness.isRoot, "needs root"))
struct NamespaceTests {
    static func link(_ path: String) -> String {
        var buf = [CChar](repeating: 0, count: 256)
        let n = readlink(path, &buf, 255)
        return n > 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
    }

    @Test(arguments: ["pid", "network", "ipc", "uts", "mount", "cgroup"])
    func eachNamespaceIsPrivate(kind: String) throws {
        let file = ["pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt", "cgroup": "cgroup"][kind]!
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["readlink", "/proc/self/ns/\(file)"])
        let id = Harness.uniqueID("ns")
        let inside = try h.run(s, id: id).out.trimmingWhitespace
        #expect(!inside.isEmpty)
        #expect(inside != NamespaceTests.link("/proc/self/ns/\(file)"), "\(kind) namespace not private")
        if kind != "mount" && kind != "pid" {
            s.linux?.namespaces?.removeAll { $0.type == kind }
            if kind == "uts" { s.hostname = nil }
            let shared = try h.run(s, id: Harness.uniqueID("ns")).out.trimmingWhitespace
            #expect(shared == NamespaceTests.link("/proc/self/ns/\(file)"), "\(kind) should be the host's")
        }
    }

    @Test func userNamespaceWithMappings() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %u /bin/busybox"])
        s.linux?.namespaces?.append(Namespace(type: "user"))
        s.linux?.uidMappings = [IDMapping(containerID: 0, hostID: 100000, size: 65536)]
        s.linux?.gidMappings = [IDMapping(containerID: 0, hostID: 100000, size: 65536)]
        // The rootfs must be owned by the mapped root for the container to use it as root.
        _ = Harness.exec(["/bin/chown", "-R", "100000:100000", h.bundle + "/rootfs"])
        let id = Harness.uniqueID("userns")
        let r = try h.run(s, id: id)
        #expect(r.code == 0, "\(r.err)")
        let lines = r.out.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        #expect(lines == ["0 100000 65536", "0 100000 65536", "0", "0"], "\(r.out)")
        h.assertClean(id)
    }

    /// Bind sources that only the host's root can reach (a 0700 directory) are opened before the
    /// init enters the user namespace (runc >= 1.2, crun): the mounts work, keep their options,
    /// and a source on a shared host mount becomes a slave inside (the rootfs' rslave default).
    @Test func userNamespaceBindsSourcesOnlyHostRootReaches() throws {
        let h = try Harness(); defer { h.cleanup() }
        let hidden = h.dir + "/host-only"
        try Files.mkdirAll(hidden + "/src")
        try Files.mkdirAll(hidden + "/shared")
        chmod(hidden, 0o700)
        try Files.write(hidden + "/src/hello", "from host\n", flags: O_WRONLY | O_CREAT | O_TRUNC)
        #expect(Harness.exec(["/bin/mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", hidden + "/shared"]).code == 0)
        defer { _ = Harness.exec(["/bin/umount", "-l", hidden + "/shared"]) }
        #expect(Harness.exec(["/bin/mount", "--make-shared", hidden + "/shared"]).code == 0)
        var s = Harness.spec(["sh", "-c", "cat /data/hello; touch /data/new 2>/dev/null || echo ro; grep ' /shared ' /proc/self/mountinfo"])
        s.linux?.namespaces?.append(Namespace(type: "user"))
        s.linux?.uidMappings = [IDMapping(containerID: 0, hostID: 100000, size: 65536)]
        s.linux?.gidMappings = [IDMapping(containerID: 0, hostID: 100000, size: 65536)]
        s.mounts?.append(Mount(destination: "/data", type: "bind", source: hidden + "/src", options: ["bind", "ro"]))
        s.mounts?.append(Mount(destination: "/shared", type: "bind", source: hidden + "/shared", options: ["rbind"]))
        _ = Harness.exec(["/bin/chown", "-R", "100000:100000", h.bundle + "/rootfs"])
        let id = Harness.uniqueID("userns-bind")
        let r = try h.run(s, id: id)
        #expect(r.code == 0, "\(r.err)")
        let lines = r.out.split(separator: "\n").map(String.init)
        #expect(Array(lines.prefix(2)) == ["from host", "ro"], "\(r.out) \(r.err)")
        let shared = lines.dropFirst(2).first ?? ""
        #expect(shared.contains(" master:") && !shared.contains(" shared:"), "propagation of /shared inside: \(shared)")
        #expect(!((try? Files.readString("/proc/self/mountinfo")) ?? "").contains(h.bundle), "a mount was left on the host")
        h.assertClean(id)
    }

    /// A source the container's root can reach is still bound by path: a read-only host mount
    /// stays locked read-only for it (a host-side clone would carry no kernel lock).
    @Test func userNamespaceBindOfAReadOnlyHostMountStaysLocked() throws {
        let h = try Harness(); defer { h.cleanup() }
        let src = h.dir + "/ro-src"
        try Files.mkdirAll(src)
        #expect(Harness.exec(["/bin/mount", "--bind", src, src]).code == 0)
        defer { _ = Harness.exec(["/bin/umount", "-l", src]) }
        #expect(Harness.exec(["/bin/mount", "-o", "remount,bind,ro", src]).code == 0)
        var s = Harness.spec(["sh", "-c", "mount -o remount,bind,rw /ro 2>/dev/null && echo remounted-rw || echo locked"])
        s.linux?.namespaces?.append(Namespace(type: "user"))
        s.linux?.uidMappings = [IDMapping(containerID: 0, hostID: 100000, size: 65536)]
        s.linux?.gidMappings = [IDMapping(containerID: 0, hostID: 100000, size: 65536)]
        let caps = (s.process?.capabilities?.bounding ?? []) + ["CAP_SYS_ADMIN"]
        s.process?.capabilities = Capabilities(bounding: caps, effective: caps, inheritable: nil, permitted: caps, ambient: nil)
        s.mounts?.append(Mount(destination: "/ro", type: "bind", source: src, options: ["bind"]))
        _ = Harness.exec(["/bin/chown", "-R", "100000:100000", h.bundle + "/rootfs"])
        let id = Harness.uniqueID("userns-ro")
        let r = try h.run(s, id: id)
        #expect(r.code == 0 && r.out == "locked\n", "\(r.out) \(r.err)")
        h.assertClean(id)
    }

    @Test func timeNamespaceOffsets() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["cat", "/proc/uptime"])
        s.linux?.namespaces?.append(Namespace(type: "time"))
        s.linux?.timeOffsets = ["boottime": TimeOffset(secs: 86400 * 365, nanosecs: 0)]
        let r = try h.run(s, id: Harness.uniqueID("timens"))
        let inside = Double(r.out.split(separator: " ").first ?? "") ?? 0
        let host = Double(((try? Files.readString("/proc/uptime")) ?? "").split(separator: " ").first ?? "") ?? 0
        #expect(inside - host > 86400 * 364, "uptime inside \(inside), host \(host): \(r.err)")
    }

    @Test func joinNamespaceByPath() throws {
        let h = try Harness(); defer { h.cleanup() }
        var a = Harness.spec(["sleep", "1000"])
        a.hostname = "sandbox"
        try h.write(a)
        let sandbox = Harness.uniqueID("sandbox")
        #expect(h.brig(["run", "-d", "--bundle", h.bundle, sandbox]).code == 0)
        let st = try JSONDecoder().decode(ContainerState.self, from: Data(h.brig(["state", sandbox]).out.utf8))
        var b = Harness.spec(["sh", "-c", "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc; hostname"])
        b.hostname = nil
        let joined = (b.linux?.namespaces ?? []).map { ns in
            ["network", "ipc", "uts"].contains(ns.type) ? Namespace(type: ns.type, path: "/proc/\(st.pid)/ns/\(ns.type == "network" ? "net" : ns.type)") : ns
        }
        b.linux?.namespaces = joined
        let r = try h.run(b, id: Harness.uniqueID("joiner"))
        let want = [NamespaceTests.link("/proc/\(st.pid)/ns/net"), NamespaceTests.link("/proc/\(st.pid)/ns/ipc"), "sandbox"]
        #expect(r.out.split(separator: "\n").map(String.init) == want, "\(r.err)")
        #expect(h.brig(["delete", "--force", sandbox]).code == 0)
        h.assertClean(sandbox)
    }
}

extension String {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s.removeFirst() }
        while s.last?.isWhitespace == true { s.removeLast() }
        return String(s)
    }
}
