import BrigCore
import BrigJSON
import BrigLinux
import BrigOCI
import Glibc

enum UpdateVerb: Verb {
    static let name = "update"
    static let usage = "[options] <container-id>"
    static let summary = "update the resource limits of a running container"
    static let flags = [
        FlagSpec(["resources", "r"], value: "FILE", "path to a linux.resources JSON file (- for stdin)"),
        FlagSpec(["blkio-weight"], value: "N", "block IO weight (10-1000)"),
        FlagSpec(["cpu-period"], value: "N", "CFS period in microseconds"),
        FlagSpec(["cpu-quota"], value: "N", "CFS quota in microseconds (-1: unlimited)"),
        FlagSpec(["cpu-share"], value: "N", "CPU shares (relative weight)"),
        FlagSpec(["cpu-rt-period"], value: "N", "realtime period in microseconds"),
        FlagSpec(["cpu-rt-runtime"], value: "N", "realtime runtime in microseconds"),
        FlagSpec(["cpu-idle"], value: "0|1", "SCHED_IDLE for the cgroup"),
        FlagSpec(["cpuset-cpus"], value: "LIST", "CPUs allowed (e.g. 0-1)"),
        FlagSpec(["cpuset-mems"], value: "LIST", "memory nodes allowed"),
        FlagSpec(["memory"], value: "BYTES", "memory limit (suffixes k, m, g; -1: unlimited)"),
        FlagSpec(["memory-reservation"], value: "BYTES", "memory soft limit"),
        FlagSpec(["memory-swap"], value: "BYTES", "memory plus swap limit"),
        FlagSpec(["kernel-memory"], value: "BYTES", "kernel memory limit (deprecated, ignored by newer kernels)"),
        FlagSpec(["kernel-memory-tcp"], value: "BYTES", "kernel TCP memory limit"),
        FlagSpec(["pids-limit"], value: "N", "maximum number of pids (-1 or 0: unlimited)"),
        FlagSpec(["l3-cache-schema"], value: "S", "Intel RDT L3 schema (not supported on this host)"),
        FlagSpec(["mem-bw-schema"], value: "S", "Intel RDT memory bandwidth schema (not supported on this host)"),
    ]

    static func run(_ args: ParsedArgs, _ ctx: Context) throws(RuntimeError) -> Int32 {
        let id = try requireID(args)
        let lock = try ctx.store.lock(id)
        defer { lock.unlock() }
        let container = try ctx.load(id)
        try container.checkNotStopped()
        try container.update(try resources(args))
        return 0
    }

    static func resources(_ args: ParsedArgs) throws(RuntimeError) -> Resources {
        if args.value("l3-cache-schema") != nil || args.value("mem-bw-schema") != nil {
            throw RuntimeError(.unsupported, "linux.intelRdt: Intel RDT is not available on this host")
        }
        var r = Resources()
        if let path = args.value("resources") {
            do {
                let data: [UInt8] = path == "-" ? try Files.read(fd: 0) : try Files.read(path)
                r = try JSONDecoding.decode(Resources.self, from: data)
            } catch { throw RuntimeError(.config, "\(path): invalid resources JSON: \(error)") }
        }
        func int(_ flag: String) throws(RuntimeError) -> Int64? {
            guard let v = args.value(flag) else { return nil }
            guard let n = Int64(v) else { throw RuntimeError(.usage, "--\(flag): invalid number \"\(v)\"") }
            return n
        }
        func bytes(_ flag: String) throws(RuntimeError) -> Int64? {
            guard let v = args.value(flag) else { return nil }
            guard let n = parseBytes(v) else { throw RuntimeError(.usage, "--\(flag): invalid size \"\(v)\"") }
            return n
        }
        if let w = try int("blkio-weight") { r.blockIO = r.blockIO ?? .init(); r.blockIO?.weight = UInt16(clamping: w) }
        var cpu = r.cpu ?? .init()
        var touchedCPU = r.cpu != nil
        if let v = try int("cpu-period") { cpu.period = UInt64(clamping: v); touchedCPU = true }
        if let v = try int("cpu-quota") { cpu.quota = v; touchedCPU = true }
        if let v = try int("cpu-share") { cpu.shares = UInt64(clamping: v); touchedCPU = true }
        if let v = try int("cpu-rt-period") { cpu.realtimePeriod = UInt64(clamping: v); touchedCPU = true }
        if let v = try int("cpu-rt-runtime") { cpu.realtimeRuntime = v; touchedCPU = true }
        if let v = try int("cpu-idle") { cpu.idle = v; touchedCPU = true }
        if let v = args.value("cpuset-cpus") { cpu.cpus = v; touchedCPU = true }
        if let v = args.value("cpuset-mems") { cpu.mems = v; touchedCPU = true }
        if touchedCPU { r.cpu = cpu }
        var mem = r.memory ?? .init()
        var touchedMem = r.memory != nil
        if let v = try bytes("memory") { mem.limit = v; touchedMem = true }
        if let v = try bytes("memory-reservation") { mem.reservation = v; touchedMem = true }
        if let v = try bytes("memory-swap") { mem.swap = v; touchedMem = true }
        if let v = try bytes("kernel-memory") { mem.kernel = v; touchedMem = true }
        if let v = try bytes("kernel-memory-tcp") { mem.kernelTCP = v; touchedMem = true }
        if touchedMem { r.memory = mem }
        if let v = try int("pids-limit") { r.pids = .init(limit: v) }
        return r
    }

    /// "512", "64k", "100M", "1g", "-1".
    static func parseBytes(_ s: String) -> Int64? {
        if s == "-1" { return -1 }
        let lower = s.lowercased().replacingSuffix("b", with: "")
        let units: [(String, Int64)] = [("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("t", 1 << 40)]
        for (u, mult) in units where lower.hasSuffix(u) {
            return Int64(lower.dropLast()).map { $0 * mult }
        }
        return Int64(lower)
    }
}

extension String {
    func replacingSuffix(_ suffix: String, with other: String) -> String {
        hasSuffix(suffix) && count > 1 ? String(dropLast(suffix.count)) + other : self
    }
}
