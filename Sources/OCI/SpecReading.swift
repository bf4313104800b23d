import BrigJSON

// config.json's readers (BrigJSON's JSONReadable): each type's fields in declaration order, as
// its synthesized init(from:) decoded them, so that the first error is the one it reported.

extension Spec: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        ociVersion = try o.required("ociVersion"); process = try o.optional("process"); root = try o.optional("root")
        hostname = try o.optional("hostname"); domainname = try o.optional("domainname"); mounts = try o.optional("mounts")
        hooks = try o.optional("hooks"); annotations = try o.optional("annotations"); linux = try o.optional("linux")
        vm = try o.optional("vm")
    }
}

extension Root: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        self.path = try o.required("path"); readonly = try o.optional("readonly")
    }
}

extension Mount: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        destination = try o.required("destination"); type = try o.optional("type"); source = try o.optional("source")
        options = try o.optional("options"); uidMappings = try o.optional("uidMappings"); gidMappings = try o.optional("gidMappings")
    }
}

extension Process: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        terminal = try o.optional("terminal"); consoleSize = try o.optional("consoleSize"); user = try o.required("user")
        args = try o.optional("args"); commandLine = try o.optional("commandLine"); env = try o.optional("env")
        cwd = try o.required("cwd"); capabilities = try o.optional("capabilities"); rlimits = try o.optional("rlimits")
        noNewPrivileges = try o.optional("noNewPrivileges"); apparmorProfile = try o.optional("apparmorProfile")
        oomScoreAdj = try o.optional("oomScoreAdj"); selinuxLabel = try o.optional("selinuxLabel")
        scheduler = try o.optional("scheduler"); ioPriority = try o.optional("ioPriority")
        execCPUAffinity = try o.optional("execCPUAffinity")
    }
}

extension Box: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        height = try o.required("height"); width = try o.required("width")
    }
}

extension User: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        uid = try o.required("uid"); gid = try o.required("gid"); umask = try o.optional("umask")
        additionalGids = try o.optional("additionalGids"); username = try o.optional("username")
    }
}

extension Capabilities: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        bounding = try o.optional("bounding"); effective = try o.optional("effective"); inheritable = try o.optional("inheritable")
        permitted = try o.optional("permitted"); ambient = try o.optional("ambient")
    }
}

extension Rlimit: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        type = try o.required("type"); hard = try o.required("hard"); soft = try o.required("soft")
    }
}

extension Scheduler: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        policy = try o.required("policy"); nice = try o.optional("nice"); priority = try o.optional("priority")
        flags = try o.optional("flags"); runtime = try o.optional("runtime"); deadline = try o.optional("deadline")
        period = try o.optional("period")
    }
}

extension IOPriority: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        self.class = try o.required("class"); priority = try o.optional("priority")
    }
}

extension ExecCPUAffinity: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        initial = try o.optional("initial"); final = try o.optional("final")
    }
}

extension Hook: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        self.path = try o.required("path"); args = try o.optional("args"); env = try o.optional("env")
        timeout = try o.optional("timeout")
    }
}

extension Hooks: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        prestart = try o.optional("prestart"); createRuntime = try o.optional("createRuntime")
        createContainer = try o.optional("createContainer"); startContainer = try o.optional("startContainer")
        poststart = try o.optional("poststart"); poststop = try o.optional("poststop")
    }
}

extension VM: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        hypervisor = try o.optional("hypervisor"); kernel = try o.required("kernel"); image = try o.optional("image")
    }
}

extension VM.Hypervisor: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        self.path = try o.required("path"); parameters = try o.optional("parameters")
    }
}

extension VM.Kernel: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        self.path = try o.required("path"); parameters = try o.optional("parameters"); initrd = try o.optional("initrd")
    }
}

extension VM.Image: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        self.path = try o.required("path"); format = try o.required("format")
    }
}
