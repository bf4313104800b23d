@testable import BrigCLI
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

@Suite struct LogFormatTests {
    /// logrus's text format quotes msg with Go's %q: an apostrophe stays as it is.
    @Test func messagesAreQuotedAsLogrusDoes() {
        #expect(Context.logQuoted("container's cgroup is not empty: 1 process(es) found")
                == #""container's cgroup is not empty: 1 process(es) found""#)
        #expect(Context.logQuoted("a \"b\" \\ c\nd\te\u{1}é") == #""a \"b\" \\ c\nd\te\x01é""#)
    }
}
