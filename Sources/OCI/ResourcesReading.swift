import BrigJSON

// linux.resources, read as SpecReading.swift reads the rest of config.json.

extension Resources: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        devices = try o.optional("devices"); memory = try o.optional("memory"); cpu = try o.optional("cpu")
        pids = try o.optional("pids"); blockIO = try o.optional("blockIO"); hugepageLimits = try o.optional("hugepageLimits")
        network = try o.optional("network"); rdma = try o.optional("rdma"); unified = try o.optional("unified")
    }
}

extension Resources.DeviceCgroupRule: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        allow = try o.required("allow"); type = try o.optional("type"); major = try o.optional("major")
        minor = try o.optional("minor"); access = try o.optional("access")
    }
}

extension Resources.Memory: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        limit = try o.optional("limit"); reservation = try o.optional("reservation"); swap = try o.optional("swap")
        kernel = try o.optional("kernel"); kernelTCP = try o.optional("kernelTCP"); swappiness = try o.optional("swappiness")
        disableOOMKiller = try o.optional("disableOOMKiller"); useHierarchy = try o.optional("useHierarchy")
        checkBeforeUpdate = try o.optional("checkBeforeUpdate")
    }
}

extension Resources.CPU: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        shares = try o.optional("shares"); quota = try o.optional("quota"); burst = try o.optional("burst")
        period = try o.optional("period"); realtimeRuntime = try o.optional("realtimeRuntime")
        realtimePeriod = try o.optional("realtimePeriod"); cpus = try o.optional("cpus"); mems = try o.optional("mems")
        idle = try o.optional("idle")
    }
}

extension Resources.Pids: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        limit = try JSONObject(json, at: path).required("limit")
    }
}

extension Resources.BlockIO: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        weight = try o.optional("weight"); leafWeight = try o.optional("leafWeight"); weightDevice = try o.optional("weightDevice")
        throttleReadBpsDevice = try o.optional("throttleReadBpsDevice")
        throttleWriteBpsDevice = try o.optional("throttleWriteBpsDevice")
        throttleReadIOPSDevice = try o.optional("throttleReadIOPSDevice")
        throttleWriteIOPSDevice = try o.optional("throttleWriteIOPSDevice")
    }
}

extension Resources.WeightDevice: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        major = try o.required("major"); minor = try o.required("minor"); weight = try o.optional("weight")
        leafWeight = try o.optional("leafWeight")
    }
}

extension Resources.ThrottleDevice: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        major = try o.required("major"); minor = try o.required("minor"); rate = try o.required("rate")
    }
}

extension Resources.HugepageLimit: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        pageSize = try o.required("pageSize"); limit = try o.required("limit")
    }
}

extension Resources.Network: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        classID = try o.optional("classID"); priorities = try o.optional("priorities")
    }
}

extension Resources.InterfacePriority: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        name = try o.required("name"); priority = try o.required("priority")
    }
}

extension Resources.RdmaLimit: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        let o = try JSONObject(json, at: path)
        hcaHandles = try o.optional("hcaHandles"); hcaObjects = try o.optional("hcaObjects")
    }
}
