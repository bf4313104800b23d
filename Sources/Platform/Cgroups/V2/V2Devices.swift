import BrigLinux
import CBrigCgroupShim
import Glibc

/// cgroup v2 devices controller: an eBPF BPF_PROG_TYPE_CGROUP_DEVICE program attached to the
/// cgroup directory with BPF_F_ALLOW_MULTI; on update the new program is attached before the
/// old ones are detached, so there is no moment without a filter.
public enum V2Devices {
    /// Generates, loads and attaches the program for `rules`, replacing earlier ones.
    public static func apply(_ rules: [DeviceRule], _ dir: CgroupDirectory) throws {
        let prog = try DeviceProgram.generate(rules)
        let progFD = try load(prog)
        defer { close(progFD) }
        let cgroupFD = try openCgroup(dir.path)
        defer { close(cgroupFD) }
        let old = try attachedPrograms(cgroupFD)
        if brig_bpf_attach_device_prog(cgroupFD, progFD, brig_bpf_f_allow_multi()) < 0 {
            throw CgroupError.bpf("attach", .last("BPF_PROG_ATTACH to \(dir.path)"))
        }
        for id in old {
            let fd = brig_bpf_prog_fd_by_id(id)
            if fd < 0 { continue }  // already gone
            defer { close(fd) }
            if brig_bpf_detach_device_prog(cgroupFD, fd) < 0 && errno != ENOENT {
                throw CgroupError.bpf("detach old program \(id)", .last("BPF_PROG_DETACH from \(dir.path)"))
            }
        }
    }

    /// Loads a device program into the kernel; returns its fd. The verifier log is included in
    /// the error when loading fails.
    public static func load(_ prog: [BPFInstruction]) throws -> Int32 {
        let bytes = DeviceProgram.encode(prog)
        var log = [CChar](repeating: 0, count: 16384)
        let logSize = UInt32(log.count)
        let fd = bytes.withUnsafeBytes { b in
            brig_bpf_load_device_prog(b.baseAddress, UInt32(prog.count), &log, logSize)
        }
        if fd < 0 {
            let err = SystemError.last("BPF_PROG_LOAD")
            let text = String(decoding: log.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw CgroupError.bpf(text.isEmpty ? "load" : "load (verifier: \(text.prefix(400)))", err)
        }
        return fd
    }

    static func openCgroup(_ path: String) throws -> Int32 {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw CgroupError.bpf("open cgroup", .last("open \(path)")) }
        return fd
    }

    /// Ids of the device programs attached to a cgroup fd.
    static func attachedPrograms(_ cgroupFD: Int32) throws -> [UInt32] {
        var ids = [UInt32](repeating: 0, count: 64)
        var count = UInt32(ids.count)
        if brig_bpf_query_device_progs(cgroupFD, &ids, &count) < 0 {
            throw CgroupError.bpf("query attached programs", .last("BPF_PROG_QUERY"))
        }
        return Array(ids.prefix(Int(min(count, UInt32(ids.count)))))
    }

    /// Ids of the device programs attached to a cgroup directory (diagnostics, tests).
    public static func attachedPrograms(path: String) throws -> [UInt32] {
        let fd = try openCgroup(path)
        defer { close(fd) }
        return try attachedPrograms(fd)
    }
}
