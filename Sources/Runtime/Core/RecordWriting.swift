import BrigJSON
import BrigOCI

// state.json's writers (BrigJSON's JSONWritable): the members in the order the synthesized
// encode(to:) wrote them, nil ones left out, so that state.json is byte for byte what it was.

extension ContainerRecord: JSONWritable {
    public var jsonValue: JSONValue {
        var o = JSONObjectWriter()
        o.set("id", id); o.set("handle", handle); o.set("bundle", bundle); o.set("rootfs", rootfs); o.set("pid", pid)
        o.set("pidStartTime", pidStartTime); o.set("created", created); o.set("owner", owner); o.set("annotations", annotations)
        o.set("hooks", hooks); o.set("incomplete", incomplete); o.set("helpers", helpers)
        return o.jsonValue
    }
}

extension BackendHandle: JSONWritable {
    public var jsonValue: JSONValue {
        switch self {
        case .namespaces(let h): return .object([("namespaces", h.jsonValue)])
        case .microvm(let h): return .object([("microvm", h.jsonValue)])
        }
    }
}

extension NamespacesHandle: JSONWritable {
    public var jsonValue: JSONValue { .object([("cgroup", cgroup.jsonValue), ("systemdCgroup", systemdCgroup.jsonValue)]) }
}

extension CgroupRecord: JSONWritable {
    public var jsonValue: JSONValue {
        var o = JSONObjectWriter()
        o.set("mode", mode); o.set("paths", paths); o.set("unifiedMount", unifiedMount); o.set("created", created)
        o.set("joinedExisting", joinedExisting); o.set("systemd", systemd)
        return o.jsonValue
    }
}

extension SystemdUnitRecord: JSONWritable {
    public var jsonValue: JSONValue {
        var o = JSONObjectWriter()
        o.set("name", name); o.set("slice", slice); o.set("user", user); o.set("containerID", containerID); o.set("started", started)
        return o.jsonValue
    }
}

extension MicroVMHandle: JSONWritable {
    public var jsonValue: JSONValue {
        var o = JSONObjectWriter()
        o.set("mode", mode); o.set("stateDir", stateDir); o.set("guestPid", guestPid); o.set("cgroup", cgroup)
        return o.jsonValue
    }
}

extension OwnedProcess: JSONWritable {
    public var jsonValue: JSONValue { .object([("pid", pid.jsonValue), ("startTime", startTime.jsonValue)]) }
}
