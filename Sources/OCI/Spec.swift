// OCI runtime-spec 1.2 configuration types (config.md, config-linux.md).
// Pure data: no syscalls here. Unknown JSON keys are ignored, as the spec requires.

public struct Spec: Codable, Sendable, Equatable {
    public var ociVersion: String
    public var process: Process?
    public var root: Root?
    public var hostname: String?
    public var domainname: String?
    public var mounts: [Mount]?
    public var hooks: Hooks?
    public var annotations: [String: String]?
    public var linux: Linux?
    public var vm: VM?

    public init(ociVersion: String = Spec.version, process: Process? = nil, root: Root? = nil,
                hostname: String? = nil, domainname: String? = nil, mounts: [Mount]? = nil,
                hooks: Hooks? = nil, annotations: [String: String]? = nil, linux: Linux? = nil, vm: VM? = nil) {
        self.ociVersion = ociVersion; self.process = process; self.root = root
        self.hostname = hostname; self.domainname = domainname; self.mounts = mounts
        self.hooks = hooks; self.annotations = annotations; self.linux = linux; self.vm = vm
    }

    public static let version = "1.2.0"
}

public struct Root: Codable, Sendable, Equatable {
    public var path: String
    public var readonly: Bool?
    public init(path: String, readonly: Bool? = nil) { self.path = path; self.readonly = readonly }
}

public struct Mount: Codable, Sendable, Equatable {
    public var destination: String
    public var type: String?
    public var source: String?
    public var options: [String]?
    public var uidMappings: [IDMapping]?
    public var gidMappings: [IDMapping]?
    public init(destination: String, type: String? = nil, source: String? = nil, options: [String]? = nil) {
        self.destination = destination; self.type = type; self.source = source; self.options = options
    }
}

public struct Process: Codable, Sendable, Equatable {
    public var terminal: Bool?
    public var consoleSize: Box?
    public var user: User
    public var args: [String]?
    public var commandLine: String?
    public var env: [String]?
    public var cwd: String
    public var capabilities: Capabilities?
    public var rlimits: [Rlimit]?
    public var noNewPrivileges: Bool?
    public var apparmorProfile: String?
    public var oomScoreAdj: Int?
    public var selinuxLabel: String?
    public var scheduler: Scheduler?
    public var ioPriority: IOPriority?
    public var execCPUAffinity: ExecCPUAffinity?

    public init(terminal: Bool? = nil, user: User = User(), args: [String]? = nil, env: [String]? = nil,
                cwd: String = "/", capabilities: Capabilities? = nil, rlimits: [Rlimit]? = nil,
                noNewPrivileges: Bool? = nil, oomScoreAdj: Int? = nil, execCPUAffinity: ExecCPUAffinity? = nil) {
        self.terminal = terminal; self.user = user; self.args = args; self.env = env; self.cwd = cwd
        self.capabilities = capabilities; self.rlimits = rlimits; self.noNewPrivileges = noNewPrivileges
        self.oomScoreAdj = oomScoreAdj; self.execCPUAffinity = execCPUAffinity
    }
}

public struct Box: Codable, Sendable, Equatable {
    public var height: UInt
    public var width: UInt
    public init(height: UInt, width: UInt) { self.height = height; self.width = width }
}

public struct User: Codable, Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32
    public var umask: UInt32?
    public var additionalGids: [UInt32]?
    public var username: String?
    public init(uid: UInt32 = 0, gid: UInt32 = 0, umask: UInt32? = nil, additionalGids: [UInt32]? = nil) {
        self.uid = uid; self.gid = gid; self.umask = umask; self.additionalGids = additionalGids
    }
}

public struct Capabilities: Codable, Sendable, Equatable {
    public var bounding: [String]?
    public var effective: [String]?
    public var inheritable: [String]?
    public var permitted: [String]?
    public var ambient: [String]?
    public init(bounding: [String]? = nil, effective: [String]? = nil, inheritable: [String]? = nil,
                permitted: [String]? = nil, ambient: [String]? = nil) {
        self.bounding = bounding; self.effective = effective; self.inheritable = inheritable
        self.permitted = permitted; self.ambient = ambient
    }
}

public struct Rlimit: Codable, Sendable, Equatable {
    public var type: String
    public var hard: UInt64
    public var soft: UInt64
    public init(type: String, hard: UInt64, soft: UInt64) { self.type = type; self.hard = hard; self.soft = soft }
}

public struct Scheduler: Codable, Sendable, Equatable {
    public var policy: String
    public var nice: Int32?
    public var priority: Int32?
    public var flags: [String]?
    public var runtime: UInt64?
    public var deadline: UInt64?
    public var period: UInt64?
    public init(policy: String, nice: Int32? = nil, priority: Int32? = nil, flags: [String]? = nil,
                runtime: UInt64? = nil, deadline: UInt64? = nil, period: UInt64? = nil) {
        self.policy = policy; self.nice = nice; self.priority = priority; self.flags = flags
        self.runtime = runtime; self.deadline = deadline; self.period = period
    }
}

public struct IOPriority: Codable, Sendable, Equatable {
    public var `class`: String
    public var priority: Int32?
    public init(class c: String, priority: Int32? = nil) { self.class = c; self.priority = priority }
}

public struct ExecCPUAffinity: Codable, Sendable, Equatable {
    public var initial: String?
    public var final: String?
    public init(initial: String? = nil, final: String? = nil) { self.initial = initial; self.final = final }
}

public struct Hook: Codable, Sendable, Equatable {
    public var path: String
    public var args: [String]?
    public var env: [String]?
    public var timeout: Int?
    public init(path: String, args: [String]? = nil, env: [String]? = nil, timeout: Int? = nil) {
        self.path = path; self.args = args; self.env = env; self.timeout = timeout
    }
}

public struct Hooks: Codable, Sendable, Equatable {
    public var prestart: [Hook]?
    public var createRuntime: [Hook]?
    public var createContainer: [Hook]?
    public var startContainer: [Hook]?
    public var poststart: [Hook]?
    public var poststop: [Hook]?
    public init() {}
}

public struct VM: Codable, Sendable, Equatable {
    public struct Hypervisor: Codable, Sendable, Equatable {
        public var path: String; public var parameters: [String]?
        public init(path: String, parameters: [String]? = nil) { self.path = path; self.parameters = parameters }
    }
    public struct Kernel: Codable, Sendable, Equatable {
        public var path: String; public var parameters: [String]?; public var initrd: String?
        public init(path: String, parameters: [String]? = nil, initrd: String? = nil) {
            self.path = path; self.parameters = parameters; self.initrd = initrd
        }
    }
    public struct Image: Codable, Sendable, Equatable {
        public var path: String; public var format: String
        public init(path: String, format: String) { self.path = path; self.format = format }
    }
    public var hypervisor: Hypervisor?
    public var kernel: Kernel
    public var image: Image?
    public init(hypervisor: Hypervisor? = nil, kernel: Kernel, image: Image? = nil) {
        self.hypervisor = hypervisor; self.kernel = kernel; self.image = image
    }
}
