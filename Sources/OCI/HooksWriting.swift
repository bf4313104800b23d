import BrigJSON

// Hooks as state.json records them (BrigJSON's JSONWritable; also their encode(to:) in a Spec).

extension Hooks: JSONWritable {
    public var jsonValue: JSONValue {
        var o = JSONObjectWriter()
        o.set("prestart", prestart); o.set("createRuntime", createRuntime); o.set("createContainer", createContainer)
        o.set("startContainer", startContainer); o.set("poststart", poststart); o.set("poststop", poststop)
        return o.jsonValue
    }
}

extension Hook: JSONWritable {
    public var jsonValue: JSONValue {
        var o = JSONObjectWriter()
        o.set("path", path); o.set("args", args); o.set("env", env); o.set("timeout", timeout)
        return o.jsonValue
    }
}
