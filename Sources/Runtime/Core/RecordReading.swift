import BrigJSON
import BrigOCI

// state.json's readers (BrigJSON's JSONReadable): the fields in the order the synthesized (or,
// for the record and the handle, hand-written) init(from:) decoded them, so that a corrupt
// state.json is described as before.

extension ContainerRecord: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        id = try o.required("id"); bundle = try o.required("bundle"); rootfs = try o.required("rootfs")
        pid = try o.required("pid"); pidStartTime = try o.required("pidStartTime"); created = try o.required("created")
        owner = try o.required("owner"); annotations = try o.optional("annotations"); hooks = try o.optional("hooks")
        incomplete = try o.optional("incomplete"); helpers = try o.optional("helpers")
        handle = o.contains("handle") ? try o.required("handle") : try Self.legacyHandle(o)
    }

    /// A record written by a brig before the typed handle (a container running across an
    /// upgrade stays deletable): the backend's name, the cgroup state at the top level (a dummy
    /// one for microvm), and microvm's fields as strings.
    static func legacyHandle(_ o: JSONObject) throws(DecodingError) -> BackendHandle {
        let name: String = try o.required("backend")
        switch BackendKind(rawValue: name) {
        case .namespaces?:
            return .namespaces(NamespacesHandle(cgroup: try o.required("cgroup"), systemdCgroup: try o.optional("systemdCgroup") ?? false))
        case .microvm?:
            let s: [String: String] = try o.optional("backendState") ?? [:]
            return .microvm(MicroVMHandle(mode: s["mode"] ?? "kvm", stateDir: s["dir"] ?? "", guestPid: s["guestPid"].flatMap { Int32($0) } ?? 0))
        case nil:
            throw o.invalid("backend", "unknown backend \"\(name)\"")
        }
    }
}

extension BackendHandle: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        if let h: NamespacesHandle = try o.optional("namespaces") { self = .namespaces(h) }
        else if let h: MicroVMHandle = try o.optional("microvm") { self = .microvm(h) }
        else {
            throw .dataCorrupted(.init(codingPath: path.codingPath, debugDescription: "no known backend (namespaces or microvm)"))
        }
    }
}

extension NamespacesHandle: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        cgroup = try o.required("cgroup"); systemdCgroup = try o.required("systemdCgroup")
    }
}

extension CgroupRecord: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        mode = try o.required("mode"); paths = try o.required("paths"); unifiedMount = try o.optional("unifiedMount")
        created = try o.required("created"); joinedExisting = try o.required("joinedExisting"); systemd = try o.optional("systemd")
    }
}

extension SystemdUnitRecord: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        name = try o.required("name"); slice = try o.required("slice"); user = try o.required("user")
        containerID = try o.required("containerID"); started = try o.optional("started")
    }
}

extension MicroVMHandle: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        mode = try o.required("mode"); stateDir = try o.required("stateDir"); guestPid = try o.required("guestPid")
        cgroup = try o.optional("cgroup")
    }
}

extension OwnedProcess: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        pid = try o.required("pid"); startTime = try o.required("startTime")
    }
}
