import BrigLinux
import CBrigShim
import Glibc
import Testing

@Suite struct MountOptionsTests {
    @Test func splitsFlagsPropagationAndData() {
        let o = MountOptions.parse(["nosuid", "noexec", "mode=755", "size=65536k", "rslave", "ro", "rw", "strictatime", "rbind"])
        #expect(o.flags == UInt(BRIG_MS_NOSUID | BRIG_MS_NOEXEC | BRIG_MS_STRICTATIME))
        #expect(o.cleared & UInt(BRIG_MS_RDONLY) != 0)
        #expect(o.propagation == [UInt(BRIG_MS_SLAVE | BRIG_MS_REC)])
        #expect(o.dataString == "mode=755,size=65536k")
        #expect(o.bind && o.recursive)
        #expect(!o.readonly)
        #expect(MountOptions.parse(["bind", "ro"]).readonly)
        #expect(!MountOptions.parse(["bind"]).recursive)
    }

    @Test func recursiveAttributes() {
        let o = MountOptions.parse(["rbind", "rro", "rnosuid", "rnoexec", "rexec"])
        #expect(o.recursiveSet == 0x1 | 0x2)  // MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID
        #expect(o.recursiveClear == 0x8)      // MOUNT_ATTR_NOEXEC, cleared by the later rexec
        #expect(o.data.isEmpty && o.flags == 0)
        #expect(MountOptions.parse(["rro", "rrw"]).recursiveSet == 0)
    }

    /// A detached bind's flags as mount_setattr attributes: set what the options set, never clear
    /// a flag the source has; one atime mode.
    @Test func detachedBindAttributes() {
        let a = MountOptions.parse(["rbind", "ro", "nosuid", "nodev", "noexec", "nodiratime", "nosymfollow", "rw", "suid"]).mountAttributes
        #expect(a.set == 0x4 | 0x8 | 0x80 | 0x200000 && a.clear == 0)  // ro and nosuid undone by rw, suid
        #expect(MountOptions.parse(["bind", "ro"]).mountAttributes == (0x1, 0))
        #expect(MountOptions.parse(["bind"]).mountAttributes == (0, 0))
        #expect(MountOptions.parse(["bind", "noatime"]).mountAttributes == (0x10, 0x70))
        #expect(MountOptions.parse(["bind", "noatime", "strictatime"]).mountAttributes == (0x20, 0x70))
        #expect(MountOptions.parse(["bind", "relatime"]).mountAttributes == (0, 0x70))
    }
}

@Suite struct ProcStatTests {
    @Test func parsesCommandsWithSpacesAndParens() {
        let line = "1234 (my (weird) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 98765 1000 10 18446744073709551615"
        let st = ProcStat.parse(line)
        #expect(st == ProcStat(state: "S", ppid: 1, startTime: 98765))
        #expect(ProcStat.parse("garbage") == nil)
    }

    @Test func livenessUsesStartTime() throws {
        let me = getpid()
        let st = try #require(ProcStat.read(pid: me))
        #expect(ProcessLiveness.isAlive(pid: me, startTime: st.startTime))
        #expect(!ProcessLiveness.isAlive(pid: me, startTime: st.startTime + 1))
        #expect(!ProcessLiveness.isAlive(pid: 0, startTime: 0))
    }

    @Test func timestampsAreRFC3339Nano() {
        let t = Timestamp.now()
        #expect(t.count == 30)
        #expect(t.hasSuffix("Z"))
        #expect(Array(t)[10] == "T")
        #expect(Timestamp.format(seconds: 0, nanoseconds: 5) == "1970-01-01T00:00:00.000000005Z")
        #expect(Timestamp.format(seconds: 951_782_400, nanoseconds: 0) == "2000-02-29T00:00:00.000000000Z")
        #expect(Timestamp.format(seconds: 4_107_542_399, nanoseconds: 999_999_999) == "2100-02-28T23:59:59.999999999Z")
    }

    /// The date arithmetic agrees with glibc's gmtime_r at the first and last second of every
    /// day from 1968 to 2102 (leap years; 2000, a leap century; 2100, not) and around 2400-02-29.
    @Test func timestampsAgreeWithGmtime() {
        var failures = 0
        for day in Array(Int64(-400)..<48_300) + Array(Int64(156_700)..<157_500) {
            for seconds in [day * 86_400, day * 86_400 + 86_399] {
                var t = time_t(seconds)
                var tmv = tm()
                gmtime_r(&t, &tmv)
                let expected = digits(tmv.tm_year + 1900, 4) + "-" + digits(tmv.tm_mon + 1, 2) + "-" +
                    digits(tmv.tm_mday, 2) + "T" + digits(tmv.tm_hour, 2) + ":" + digits(tmv.tm_min, 2) + ":" +
                    digits(tmv.tm_sec, 2) + ".000000042Z"
                if Timestamp.format(seconds: seconds, nanoseconds: 42) != expected { failures += 1 }
            }
        }
        #expect(failures == 0)
    }
}

/// openat2(RESOLVE_IN_ROOT) and the fd-anchored walk need no privileges: test them on a temp tree.
@Suite struct SecurePathTests {
    func tree() throws -> String {
        var t = Array("/tmp/brig-secure-XXXXXX".utf8CString)
        let root = String(cString: mkdtemp(&t)!)
        try Files.mkdirAll(root + "/rootfs/etc")
        try Files.mkdirAll(root + "/outside")
        symlink(root + "/outside", root + "/rootfs/abs")          // absolute, points out of the rootfs
        symlink("../../../../../../..", root + "/rootfs/climb")  // relative, climbs above it
        symlink("/etc", root + "/rootfs/etclink")
        symlink("loop2", root + "/rootfs/loop1"); symlink("loop1", root + "/rootfs/loop2")
        return root
    }

    func path(of fd: Int32) -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/fd/\(fd)", &buf, 4095)
        return String(decoding: buf[0..<max(0, n)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    @Test func createResolvesSymlinksInsideTheRoot() throws {
        let root = try tree(); defer { Files.removeAll(root) }
        let rootFD = try SecurePath.openRoot(root + "/rootfs"); defer { close(rootFD) }
        let a = try SecurePath.create(rootFD, "/abs/x", kind: .directory); defer { close(a) }
        #expect(path(of: a) == root + "/rootfs" + root + "/outside/x")
        let b = try SecurePath.create(rootFD, "/climb/tmp/y", kind: .file); defer { close(b) }
        #expect(path(of: b) == root + "/rootfs/tmp/y")
        let c = try SecurePath.create(rootFD, "/etclink/z", kind: .directory); defer { close(c) }
        #expect(path(of: c) == root + "/rootfs/etc/z")
        #expect(try Files.list(root + "/outside").isEmpty)
        #expect(throws: SystemError.self) { _ = try SecurePath.create(rootFD, "/loop1/x", kind: .directory) }
    }

    @Test func openStaysInsideTheRoot() throws {
        let root = try tree(); defer { Files.removeAll(root) }
        let rootFD = try SecurePath.openRoot(root + "/rootfs"); defer { close(rootFD) }
        let fd = try SecurePath.open(rootFD, "/climb/etc"); defer { close(fd) }
        #expect(path(of: fd) == root + "/rootfs/etc")
        #expect(throws: SystemError.self) { _ = try SecurePath.open(rootFD, "/abs") }  // dangling inside the root
    }
}

@Suite struct SpawnAndSocketTests {
    @Test func exitStatusAndSignals() throws {
        let p = try Spawn.spawn(Spawn.Options(path: "/bin/sh", args: ["sh", "-c", "exit 3"], env: []))
        #expect(try Spawn.wait(p) == .exited(3))
        let q = try Spawn.spawn(Spawn.Options(path: "/bin/sh", args: ["sh", "-c", "kill -TERM $$"], env: []))
        #expect(try Spawn.wait(q).code == 143)
        let r = try Spawn.spawn(Spawn.Options(path: "/bin/sleep", args: ["sleep", "10"], env: []))
        #expect(try Spawn.wait(r, timeout: 0.05) == nil)
    }

    @Test func fdPassing() throws {
        let (a, b) = try UnixSocket.pair(); defer { close(a); close(b) }
        let (r, w) = try Files.pipe()
        try UnixSocket.sendFD(a, w, "payload")
        close(w)
        let (fd, payload) = try UnixSocket.receiveFD(b)
        #expect(payload == "payload")
        try Files.writeAll(fd: fd, Array("x".utf8)); close(fd)
        #expect(try Files.read(fd: r) == Array("x".utf8)); close(r)
    }

    @Test func longSocketPathsWork() throws {
        var t = Array("/tmp/brig-sock-XXXXXX".utf8CString)
        let dir = String(cString: mkdtemp(&t)!); defer { Files.removeAll(dir) }
        let deep = dir + "/" + String(repeating: "d", count: 120)
        try Files.mkdirAll(deep)
        let l = try UnixSocket.listen(deep + "/s.sock"); defer { close(l) }
        let c = try UnixSocket.connect(deep + "/s.sock"); close(c)
    }
}

@Suite struct LineAndOutputTests {
    @Test func readLineStopsAtNewlineEOFOrLimit() throws {
        let (r, w) = try Files.pipe()
        try Files.writeAll(fd: w, Array("OK 1073741824\nrest-longer".utf8))
        close(w)
        let first = Files.readLine(fd: r, max: 64)
        #expect(first.text == "OK 1073741824" && first.end == .newline)
        let limited = Files.readLine(fd: r, max: 4)
        #expect(limited.text == "rest" && limited.end == .limit)
        let last = Files.readLine(fd: r, max: 64)
        #expect(last.text == "-longer" && last.end == .eof)
        close(r)
    }

    @Test func outputCapturesTheChosenFdsAndTheExit() throws {
        let o = Spawn.Options(path: "/bin/sh", args: ["sh", "-c", "echo out; echo err >&2; exit 3"], env: [])
        let both = try Spawn.output(o, capture: [1, 2])
        #expect(both.exit == .exited(3))
        #expect(String(decoding: both.output, as: UTF8.self) == "out\nerr\n")
        // By default only stdout: stderr stays the caller's.
        let stdoutOnly = try Spawn.output(Spawn.Options(path: "/bin/sh", args: ["sh", "-c", "echo out; echo err >/dev/null"], env: []))
        #expect(stdoutOnly.exit == .exited(0) && String(decoding: stdoutOnly.output, as: UTF8.self) == "out\n")
    }
}

/// `v` in at least `width` digits, zero-padded (the gmtime_r side of timestampsAgreeWithGmtime).
private func digits(_ v: Int32, _ width: Int) -> String {
    let s = String(v); return String(repeating: "0", count: max(0, width - s.count)) + s
}

@Suite struct CloseOnExecTests {
    /// The /proc/self/fd walk that stands in for close_range where a seccomp profile refuses it:
    /// every fd from `first` on is marked, none below it (fds this high belong to nothing else here).
    @Test func walkMarksFdsFromFirstOnly() throws {
        let base: Int32 = 900
        var fds: [Int32] = []
        for target in [base - 1, base, base + 7] {
            let fd = open("/dev/null", O_RDONLY)  // without O_CLOEXEC
            #expect(fd >= 0)
            #expect(dup2(fd, target) == target)
            close(fd)
            fds.append(target)
        }
        defer { for fd in fds { close(fd) } }
        #expect(fds.allSatisfy { fcntl($0, F_GETFD) & FD_CLOEXEC == 0 })
        #expect(brig_mark_cloexec_walk(UInt32(base)) == 0)
        #expect(fcntl(base - 1, F_GETFD) & FD_CLOEXEC == 0, "below first: untouched")
        #expect(fcntl(base, F_GETFD) & FD_CLOEXEC != 0)
        #expect(fcntl(base + 7, F_GETFD) & FD_CLOEXEC != 0)
    }
}
