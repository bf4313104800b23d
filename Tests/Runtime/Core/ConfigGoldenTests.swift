import BrigCore
import BrigJSON
import BrigOCI
import Testing

/// config.json's decoder against the outcomes the synthesized Codable decoder had (Golden): the
/// decoded value (its fingerprint) or the error users see, for `runc spec`'s default, a config
/// with every field set, and each mutation of the latter (Mutations).
@Suite struct ConfigGoldenTests {
    /// Every field of every type config.json has, arrays of two where an index matters.
    static let maximal = #"""
    {"ociVersion":"1.2.0",
     "process":{"terminal":true,"consoleSize":{"height":24,"width":80},
       "user":{"uid":1000,"gid":1000,"umask":18,"additionalGids":[5,6],"username":"u"},
       "args":["sh","-c"],"commandLine":"sh -c","env":["PATH=/bin","A=1"],"cwd":"/",
       "capabilities":{"bounding":["CAP_KILL"],"effective":["CAP_KILL"],"inheritable":["CAP_KILL"],"permitted":["CAP_KILL"],"ambient":["CAP_KILL"]},
       "rlimits":[{"type":"RLIMIT_NOFILE","hard":1024,"soft":1024},{"type":"RLIMIT_CORE","hard":0,"soft":0}],
       "noNewPrivileges":true,"apparmorProfile":"a","oomScoreAdj":-100,"selinuxLabel":"s",
       "scheduler":{"policy":"SCHED_DEADLINE","nice":-5,"priority":0,"flags":["SCHED_FLAG_RECLAIM"],"runtime":10,"deadline":20,"period":30},
       "ioPriority":{"class":"IOPRIO_CLASS_BE","priority":4},
       "execCPUAffinity":{"initial":"0","final":"0-1"}},
     "root":{"path":"rootfs","readonly":true},
     "hostname":"h","domainname":"d",
     "mounts":[{"destination":"/proc","type":"proc","source":"proc"},
       {"destination":"/m","type":"bind","source":"/s","options":["rbind","ro"],
        "uidMappings":[{"containerID":0,"hostID":1000,"size":1}],"gidMappings":[{"containerID":0,"hostID":1000,"size":1}]}],
     "hooks":{"prestart":[{"path":"/h","args":["h"],"env":["E=1"],"timeout":5}],"createRuntime":[{"path":"/h"}],
       "createContainer":[{"path":"/h"}],"startContainer":[{"path":"/h"}],"poststart":[{"path":"/h"}],"poststop":[{"path":"/h"}]},
     "annotations":{"a":"1","b":"2"},
     "linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/proc/1/ns/net"}],
       "uidMappings":[{"containerID":0,"hostID":1000,"size":1}],"gidMappings":[{"containerID":0,"hostID":1000,"size":1}],
       "timeOffsets":{"monotonic":{"secs":-1,"nanosecs":5}},
       "devices":[{"type":"c","path":"/dev/x","major":1,"minor":3,"fileMode":438,"uid":0,"gid":0}],
       "netDevices":{"eth0":{"name":"e0"}},
       "cgroupsPath":"/c",
       "resources":{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}],
         "memory":{"limit":1000,"reservation":900,"swap":2000,"kernel":1,"kernelTCP":2,"swappiness":60,
           "disableOOMKiller":false,"useHierarchy":true,"checkBeforeUpdate":true},
         "cpu":{"shares":1024,"quota":-1,"burst":5,"period":100000,"realtimeRuntime":1,"realtimePeriod":2,"cpus":"0-1","mems":"0","idle":0},
         "pids":{"limit":-1},
         "blockIO":{"weight":10,"leafWeight":10,"weightDevice":[{"major":8,"minor":0,"weight":5,"leafWeight":5}],
           "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1}],"throttleWriteBpsDevice":[{"major":8,"minor":0,"rate":2}],
           "throttleReadIOPSDevice":[{"major":8,"minor":0,"rate":3}],"throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":4}]},
         "hugepageLimits":[{"pageSize":"2MB","limit":0}],
         "network":{"classID":7,"priorities":[{"name":"eth0","priority":1}]},
         "rdma":{"mlx5_1":{"hcaHandles":3,"hcaObjects":10000}},
         "unified":{"memory.high":"max"}},
       "rootfsPropagation":"private",
       "seccomp":{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"architectures":["SCMP_ARCH_X86_64"],"flags":["SECCOMP_FILTER_FLAG_LOG"],
         "listenerPath":"/l","listenerMetadata":"m",
         "syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW","errnoRet":0,
           "args":[{"index":0,"value":1,"valueTwo":2,"op":"SCMP_CMP_EQ"}]}]},
       "sysctl":{"net.ipv4.ip_forward":"1"},
       "maskedPaths":["/proc/kcore"],"readonlyPaths":["/proc/sys"],"mountLabel":"l",
       "personality":{"domain":"LINUX","flags":["ADDR_NO_RANDOMIZE"]},
       "intelRdt":{"closID":"c","l3CacheSchema":"L3:0=f","memBwSchema":"MB:0=20","enableCMT":true,"enableMBM":false},
       "memoryPolicy":{"mode":"MPOL_BIND","nodes":"0","flags":["MPOL_F_STATIC_NODES"]}},
     "vm":{"hypervisor":{"path":"/hv","parameters":["-x"]},"kernel":{"path":"/k","parameters":["quiet"],"initrd":"/i"},
       "image":{"path":"/img","format":"raw"}}}
    """#

    static func outcome(_ bytes: [UInt8]) -> String {
        do {
            let spec = try ConfigLoader.decode(bytes)
            return "ok " + Golden.hash((try? JSONEncoding.encode(spec, format: .sortedKeys)) ?? [])
        } catch {
            return "error " + error.description
        }
    }

    static func cases() throws -> [(label: String, outcome: String)] {
        var out: [(String, String)] = []
        for text in ["", "{", "[1,2]", "null", "7", "\"x\"", "{}", #"{"ociVersion":"1.2.0"}"#] {
            out.append(("text \(text)", outcome(Array(text.utf8))))
        }
        for (name, spec) in [("default", DefaultSpec.make()), ("rootless", DefaultSpec.make(rootless: true, uid: 1000, gid: 1000)),
                             ("cgroupns", DefaultSpec.make(cgroupNamespace: true))] {
            out.append(("\(name) spec", outcome(try JSONEncoding.encode(spec))))
        }
        for (label, json) in Mutations.all(of: try JSONParser.parse(Array(maximal.utf8))) {
            out.append((label, outcome(JSONWriter.write(json))))
        }
        return out
    }

    @Test func outcomesAreThoseOfTheCodableDecoder() throws {
        let cases = try Self.cases()
        #expect(cases.count > 1000)
        // The corpus reaches every kind of outcome the users see.
        for kind in ["ok ", "expected an integer", "expected a string", "expected a boolean", "expected an array",
                     "expected an object", "found null", "required field is missing", "invalid value (number",
                     "config.json is not valid JSON"] {
            #expect(cases.contains { $0.outcome.contains(subsequence: kind) }, "no case ends in \(kind)")
        }
        try Golden.check("config-golden.txt", cases)
    }

    /// The maximal config sets every field: its value re-encodes to the same document.
    @Test func maximalConfigSetsEveryField() throws {
        let document = try JSONParser.parse(Array(Self.maximal.utf8))
        let spec = try ConfigLoader.decode(Array(Self.maximal.utf8))
        let again = try JSONParser.parse(try JSONEncoding.encode(spec))
        #expect(JSONWriter.write(again, format: .sortedKeys) == JSONWriter.write(document, format: .sortedKeys))
        let optionals = Self.optionals(spec)
        let unset = Set(optionals.filter { !$0.set }.map(\.field)).subtracting(optionals.filter(\.set).map(\.field))
        #expect(unset.isEmpty, "fields the maximal config leaves unset: \(unset.sorted())")
    }

    /// The optional fields of `value` and of what it contains, as `Type.field`, and whether each
    /// is set (a field counts as set when it is in one of its type's values).
    static func optionals(_ value: Any) -> [(field: String, set: Bool)] {
        let mirror = Mirror(reflecting: value)
        return mirror.children.flatMap { child -> [(field: String, set: Bool)] in
            let field = "\(mirror.subjectType).\(child.label ?? "[]")"
            let inner = Mirror(reflecting: child.value)
            guard inner.displayStyle == .optional else { return optionals(child.value) }
            guard let wrapped = inner.children.first?.value else { return [(field, false)] }
            return [(field, true)] + optionals(wrapped)
        }
    }
}
