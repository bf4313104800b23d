@testable import BrigCLI
import BrigCore
import BrigOCI
import Testing

@Suite struct ArgumentParsingTests {
    let specs = [FlagSpec(["bundle", "b"], value: "DIR", ""), FlagSpec(["detach", "d"], ""), FlagSpec(["all", "a"], "")]

    @Test func runcStyleForms() throws {
        let p = try ArgumentParser.parse(["-b", "x", "--detach", "id1", "--all=false", "-bundle=y", "--", "-notaflag"], specs: specs)
        #expect(p.value("bundle") == "y")
        #expect(p.values("bundle") == ["x", "y"])
        #expect(p.has("detach"))
        #expect(!p.has("all"))
        #expect(p.positionals == ["id1", "-notaflag"])
    }

    @Test func globalFlagsStopAtTheVerb() throws {
        let p = try ArgumentParser.parse(["--root", "/r", "--log-format", "json", "kill", "--all", "id", "KILL"],
                                         specs: Context.globalFlags, stopAtPositional: true)
        #expect(p.value("root") == "/r" && p.value("log-format") == "json")
        #expect(p.positionals == ["kill", "--all", "id", "KILL"])
    }

    @Test func errors() {
        #expect(throws: (any Error).self) { try ArgumentParser.parse(["--nope"], specs: specs) }
        #expect(throws: (any Error).self) { try ArgumentParser.parse(["--bundle"], specs: specs) }
    }
}

@Suite struct ExecCgroupFlagTests {
    /// runc's `exec --cgroup` forms: PATH for every hierarchy (once), CTRL[,CTRL]:PATH.
    func refusal(_ values: [String]) -> String? {
        do { _ = try ExecVerb.subCgroups(values); return nil } catch { return error.message }
    }

    @Test func parsesRuncForms() throws {
        #expect(try ExecVerb.subCgroups([]) == [:])
        #expect(try ExecVerb.subCgroups(["a/b", "memory,pids:m", "cpu:c"]) == ["": "a/b", "memory": "m", "pids": "m", "cpu": "c"])
        #expect(refusal(["a", "b"]) == "--cgroup: only one path without a controller is allowed")
        #expect(refusal(["memory,:m"]) == "--cgroup: empty controller in \"memory,:m\"")
    }
}

@Suite struct LogFormatTests {
    /// logrus's text format quotes msg with Go's %q: an apostrophe stays as it is.
    @Test func messagesAreQuotedAsLogrusDoes() {
        #expect(Context.logQuoted("container's cgroup is not empty: 1 process(es) found")
                == #""container's cgroup is not empty: 1 process(es) found""#)
        #expect(Context.logQuoted("a \"b\" \\ c\nd\te\u{1}é") == #""a \"b\" \\ c\nd\te\x01é""#)
    }
}

@Suite struct RuncParityOutputTests {
    @Test func orderedJSONKeepsKeyOrderAndDropsNil() throws {
        let text = try orderedJSON([("type", "stats"), ("id", "c\"1"), ("data", nil as String?), ("pid", 7)])
        #expect(text == #"{"type":"stats","id":"c\"1","pid":7}"#)
    }

    @Test func processJSONWithoutUserGetsOne() throws {
        let user = User(uid: 0, gid: 0)
        let out = try ExecVerb.withDefaultUser(Array(#"  {"args":["x"],"cwd":"/"}"#.utf8), user)
        #expect(String(decoding: out, as: UTF8.self) == #"  {"user":{"gid":0,"uid":0},"args":["x"],"cwd":"/"}"#
            || String(decoding: out, as: UTF8.self) == #"  {"user":{"uid":0,"gid":0},"args":["x"],"cwd":"/"}"#)
        let has = Array(#"{"user":{"uid":5,"gid":5},"cwd":"/"}"#.utf8)
        #expect(try ExecVerb.withDefaultUser(has, user) == has)
        #expect(String(decoding: try ExecVerb.withDefaultUser(Array("{}".utf8), user), as: UTF8.self).hasSuffix("}}"))
    }
}

@Suite struct RuncVerbHelpTests {
    @Test func everyRuncVerbHasHelp() {
        let runc = ["checkpoint", "create", "delete", "events", "exec", "features", "kill", "list", "pause", "ps",
                    "restore", "resume", "run", "spec", "start", "state", "update"]
        let known = Set(CLI.verbs.map { $0.name } + CLI.unsupported.map(\.name))
        #expect(runc.filter { !known.contains($0) } == [])
        let text = CLI.unsupportedHelp(CLI.unsupported[0])
        #expect(text.contains("USAGE:") && text.contains("Not supported"))
        #expect(CLI.help().contains("checkpoint"))
    }
}
