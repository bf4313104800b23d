#if canImport(Glibc)
import Glibc
#endif
import BrigKVM
import BrigLinux
import CBrigShim

/// `brig vm …`: boots a guest with its console on stdout and exits with the guest's status.
public enum VMCommand {
    public static let usage = """
    usage: vm boot --kernel K [--initrd I] [--disk D [--disk-ro]]... [--mem 256M] [--cpus 1]
                   [--cmdline "..."] [--serial-out FILE] [--timeout SECONDS] [--no-pvh] [--no-pit] [--no-balloon]
                   [--cpuid-vendor GenuineIntel] [--cpuid-hide cx16,popcnt,smep,smap,xsave] [--timing]
                   [--vsock-uds PATH [--vsock-cid 3]] [--net-tap NAME [--net-mac MAC] [--net-mtu 1500]] [--seccomp]
           vm host-info
           vm jail-check [socket-inet] [socket-unix] [netns] [pty] [tiocsti] [execve]
    --net-tap adds a virtio-net device on tap NAME (created in the VMM's network namespace).
    --no-balloon leaves out the free page reporting device (virtio-balloon).
    --seccomp confines the VMM once the VM is built (new IPC/UTS/net namespaces, seccomp
    allowlist; see VMMJail). jail-check applies the same jail to itself, then tries each probe
    and prints `NAME ok` or `NAME errno N` (execve is killed by the filter).
    Exit status: the guest's status N when it writes N to I/O port 0xF4; 0 on guest reset or
    shutdown; 124 on --timeout; 125 on VMM/configuration errors; 126 when the guest crashed.
    """

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case missingValue(String), unknownOption(String), badValue(option: String, value: String), missingKernel, noCommand
        public var description: String {
            switch self {
            case let .missingValue(o): return "\(o) needs a value"
            case let .unknownOption(o): return "unknown option \(o)"
            case let .badValue(o, v): return "bad value for \(o): \(v)"
            case .missingKernel: return "--kernel is required"
            case .noCommand: return "expected a subcommand: boot or host-info"
            }
        }
    }

    /// Parses sizes like 256M, 1G, 4096K, 65536.
    /// (On the UTF-8 bytes: Character-wise String code is more text faulted in at boot.)
    public static func parseSize(_ s: String) -> UInt64? {
        let bytes = Array(s.utf8)
        guard let last = bytes.last else { return nil }
        let mult: UInt64 = switch last {
        case UInt8(ascii: "K"), UInt8(ascii: "k"): 1 << 10
        case UInt8(ascii: "M"), UInt8(ascii: "m"): 1 << 20
        case UInt8(ascii: "G"), UInt8(ascii: "g"): 1 << 30
        default: 1
        }
        guard let n = UInt64(String(decoding: mult == 1 ? bytes[...] : bytes.dropLast(), as: UTF8.self)) else { return nil }
        let r = n.multipliedReportingOverflow(by: mult)
        return r.overflow ? nil : r.partialValue
    }

    public struct Options: Sendable {
        public var config: VMConfig
        public var serialOut: String?
        public var timing = false
        public var seccomp = false
    }

    public static func parse(_ args: [String]) throws(ParseError) -> Options {
        var kernel: String?, initrd: String?, disks: [VMConfig.Disk] = []
        var mem: UInt64 = 256 << 20, cpus = 1, cmdline = VMConfig.defaultCmdline, serialOut: String?
        var timeout: Double?, pvh = true, pit = true, balloon = true, timing = false, seccomp = false, cpuid = CPUIDPolicy()
        var vsockUDS: String?, vsockCID: UInt64 = 3
        var netTap: String?, netMAC: [UInt8] = [0x02, 0x62, 0x72, 0x69, 0x67, 0x01], netMTU: UInt16 = 1500
        var i = 0
        func value(_ o: String) throws(ParseError) -> String {
            i += 1
            guard i < args.count else { throw .missingValue(o) }
            return args[i]
        }
        while i < args.count {
            let a = args[i]
            switch a {
            case "--kernel": kernel = try value(a)
            case "--initrd": initrd = try value(a)
            case "--disk": disks.append(.init(path: try value(a), readOnly: false))
            case "--disk-ro":
                guard !disks.isEmpty else { throw .badValue(option: a, value: "must follow --disk") }
                disks[disks.count - 1].readOnly = true
            case "--mem":
                let v = try value(a)
                guard let m = parseSize(v) else { throw .badValue(option: a, value: v) }
                mem = m
            case "--cpus":
                let v = try value(a)
                guard let n = Int(v), n >= 1 else { throw .badValue(option: a, value: v) }
                cpus = n
            case "--cmdline": cmdline = try value(a)
            case "--serial-out": serialOut = try value(a)
            case "--timeout":
                let v = try value(a)
                guard let t = Double(v), t > 0 else { throw .badValue(option: a, value: v) }
                timeout = t
            case "--no-pvh": pvh = false
            case "--no-pit": pit = false
            case "--no-balloon": balloon = false
            case "--timing": timing = true
            case "--seccomp": seccomp = true
            case "--vsock-uds": vsockUDS = try value(a)
            case "--vsock-cid":
                let v = try value(a)
                guard let n = UInt64(v), n >= 3, n < UInt64(UInt32.max) else { throw .badValue(option: a, value: v) }
                vsockCID = n
            case "--net-tap": netTap = try value(a)
            case "--net-mac":
                let v = try value(a)
                guard let m = NetConfig.parseMAC(v) else { throw .badValue(option: a, value: v) }
                netMAC = m
            case "--net-mtu":
                let v = try value(a)
                guard let m = UInt16(v), m >= 68 else { throw .badValue(option: a, value: v) }
                netMTU = m
            case "--cpuid-vendor":
                let v = try value(a)
                guard v.utf8.count == 12 else { throw .badValue(option: a, value: v) }
                cpuid.vendor = v
            case "--cpuid-hide":
                let v = try value(a)
                for name in v.split(separator: ",") {
                    guard let f = CPUIDFeature(rawValue: String(name)) else { throw .badValue(option: a, value: String(name)) }
                    cpuid.hide.insert(f)
                }
            default: throw .unknownOption(a)
            }
            i += 1
        }
        guard let kernel else { throw .missingKernel }
        var c = VMConfig(kernelPath: kernel)
        c.initrdPath = initrd; c.disks = disks; c.memoryBytes = mem; c.cpus = cpus; c.cmdline = cmdline
        c.timeoutSeconds = timeout; c.preferPVH = pvh; c.pit = pit; c.cpuid = cpuid; c.freePageReporting = balloon
        c.vsock = vsockUDS.map { VsockConfig(guestCID: vsockCID, udsPath: $0) }
        c.net = netTap.map { NetConfig(tapName: $0, mac: netMAC, mtu: netMTU) }
        return Options(config: c, serialOut: serialOut, timing: timing, seccomp: seccomp)
    }

    static func err(_ s: String) { VMMLog.write(s) }

    static func now() -> Double { monotonicSeconds() }

    public static func main(_ rawArgs: [String]) -> Int32 {
        let t0 = now()
        var args = rawArgs
        if args.first == "vm" { args.removeFirst() }
        guard let sub = args.first else { err(usage); return 125 }
        switch sub {
        case "host-info":
            print(HostKVMInfo.detect())
            return 0
        case "boot": break
        case "jail-check": return jailCheck(Array(args.dropFirst()))
        case "-h", "--help", "help": print(usage); return 0
        default: err("vm: \(ParseError.noCommand)\n\(usage)"); return 125
        }
        var opts: Options
        do { opts = try parse(Array(args.dropFirst())) } catch { err("vm boot: \(error)\n\(usage)"); return 125 }
        var serialFD: Int32 = -1
        if let path = opts.serialOut {
            serialFD = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard serialFD >= 0 else { err("vm boot: cannot open --serial-out \(path): \(String(cString: strerror(errno)))"); return 125 }
            opts.config.serialFD = serialFD
        }
        defer { if serialFD >= 0 { close(serialFD) } }
        let machine: VirtualMachine
        do { machine = try VirtualMachine(opts.config) } catch { err("vm boot: \(error)"); return 125 }
        let setUp = now()
        if opts.seccomp {
            do { try VMMJail.apply() } catch { err("vm boot: confining the VMM: \(error)"); return 125 }
        }
        let firstByte = FirstByteClock()
        if opts.timing { machine.onFirstSerialByte = { firstByte.mark() } }
        let reason = machine.run()
        let t1 = now()
        if opts.timing {
            let fb = firstByte.time.map { String(Int(($0 - t0) * 1e6)) } ?? "none"
            let steps = machine.setupPhases.map { "\($0.name)=\(Int($0.seconds * 1e6))" }.joined(separator: " ")
            err("vm timing: setup-us=\(Int((setUp - t0) * 1e6)) (\(steps)) first-serial-byte-us=\(fb) stop-us=\(Int((t1 - t0) * 1e6))")
        }
        switch reason {
        case .powerOff, .reset: break
        default:
            err("vm boot: \(reason) [\(machine.host)]")
            if let c = machine.crashState { err("vm boot: \(c)") }
        }
        return reason.exitStatus
    }
}

extension VMCommand {
    /// `vm jail-check PROBE...`: applies the VMM jail to this process and tries each probe.
    static func jailCheck(_ probes: [String]) -> Int32 {
        do { try VMMJail.apply() } catch { err("vm jail-check: \(error)"); return 125 }
        for probe in probes {
            let rc: Int32
            switch probe {
            case "socket-inet": rc = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            case "socket-unix": rc = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            case "netns":
                var st = stat()
                rc = stat("/proc/self/ns/net", &st)
                if rc == 0 { print("netns \(st.st_ino)"); continue }
            case "pty": rc = ptyProbe()
            case "tiocsti":  // a tty ioctl the monitor never uses (it injects terminal input)
                var c: CChar = 0x20
                rc = ioctl(0, 0x5412, &c)
            case "execve":
                print("execve trying", terminator: "\n"); fflush(stdout)
                let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
                rc = execv("/bin/true", argv)
            default: err("vm jail-check: unknown probe \(probe)"); return 125
            }
            print(rc >= 0 ? "\(probe) ok" : "\(probe) errno \(errno)")
        }
        return 0
    }
}

extension VMCommand {
    /// The monitor's host-pty steps for a guest terminal (open, unlock, name, raw mode, window
    /// size); -1 with errno from the first that fails.
    static func ptyProbe() -> Int32 {
        let master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard master >= 0 else { return -1 }
        defer { close(master) }
        var name = [CChar](repeating: 0, count: 64)
        guard brig_unlockpt(master) == 0, brig_ptsname(master, &name, name.count) == 0 else { return -1 }
        let slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard slave >= 0 else { return -1 }
        defer { close(slave) }
        var t = termios()
        guard tcgetattr(slave, &t) == 0 else { return -1 }
        cfmakeraw(&t)
        var rows: UInt16 = 0, cols: UInt16 = 0
        guard tcsetattr(slave, TCSANOW, &t) == 0, brig_set_winsize(slave, 33, 101) == 0,
              brig_get_winsize(slave, &rows, &cols) == 0 else { return -1 }
        if rows != 33 || cols != 101 { errno = EIO; return -1 }
        return 0
    }
}

/// Records when the guest's first serial byte arrived.
final class FirstByteClock: @unchecked Sendable {
    private(set) var time: Double?
    func mark() { if time == nil { time = VMCommand.now() } }
}
