import BrigJSON

// config.json's linux section, read as SpecReading.swift reads the rest.

extension Linux: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        namespaces = try o.optional("namespaces"); uidMappings = try o.optional("uidMappings")
        gidMappings = try o.optional("gidMappings"); timeOffsets = try o.optional("timeOffsets")
        devices = try o.optional("devices"); netDevices = try o.optional("netDevices")
        cgroupsPath = try o.optional("cgroupsPath"); resources = try o.optional("resources")
        rootfsPropagation = try o.optional("rootfsPropagation"); seccomp = try o.optional("seccomp")
        sysctl = try o.optional("sysctl"); maskedPaths = try o.optional("maskedPaths")
        readonlyPaths = try o.optional("readonlyPaths"); mountLabel = try o.optional("mountLabel")
        personality = try o.optional("personality"); intelRdt = try o.optional("intelRdt")
        memoryPolicy = try o.optional("memoryPolicy")
    }
}

extension Namespace: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        type = try o.required("type"); self.path = try o.optional("path")
    }
}

extension IDMapping: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        containerID = try o.required("containerID"); hostID = try o.required("hostID"); size = try o.required("size")
    }
}

extension TimeOffset: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        secs = try o.optional("secs"); nanosecs = try o.optional("nanosecs")
    }
}

extension Device: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        type = try o.required("type"); self.path = try o.required("path"); major = try o.optional("major")
        minor = try o.optional("minor"); fileMode = try o.optional("fileMode"); uid = try o.optional("uid")
        gid = try o.optional("gid")
    }
}

extension NetDevice: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        name = try JSONObject(json, at: path).optional("name")
    }
}

extension Personality: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        domain = try o.required("domain"); flags = try o.optional("flags")
    }
}

extension IntelRdt: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        closID = try o.optional("closID"); l3CacheSchema = try o.optional("l3CacheSchema")
        memBwSchema = try o.optional("memBwSchema"); enableCMT = try o.optional("enableCMT"); enableMBM = try o.optional("enableMBM")
    }
}

extension MemoryPolicy: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        mode = try o.required("mode"); nodes = try o.optional("nodes"); flags = try o.optional("flags")
    }
}

extension Seccomp: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        defaultAction = try o.required("defaultAction"); defaultErrnoRet = try o.optional("defaultErrnoRet")
        architectures = try o.optional("architectures"); flags = try o.optional("flags")
        listenerPath = try o.optional("listenerPath"); listenerMetadata = try o.optional("listenerMetadata")
        syscalls = try o.optional("syscalls")
    }
}

extension SeccompSyscall: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        names = try o.required("names"); action = try o.required("action"); errnoRet = try o.optional("errnoRet")
        args = try o.optional("args")
    }
}

extension SeccompArg: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        index = try o.required("index"); value = try o.required("value"); valueTwo = try o.optional("valueTwo")
        op = try o.required("op")
    }
}
