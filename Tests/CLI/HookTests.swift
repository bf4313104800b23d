import BrigLinux
import BrigOCI
import FoundationEssentials
import Glibc
import Testing

@Suite("hooks", .enabled(if: Harness.isRoot, "needs root"))
struct HookTests {
    /// Every kind of hook appends "<kind> <status> <pid>" to a log, with the state from stdin.
    @Test func everyKindRunsInOrderWithState() throws {
        let h = try Harness(); defer { h.cleanup() }
        let log = h.dir + "/hooks.log"
        let script = h.dir + "/hook.sh"
        // Runs in the runtime namespace (host paths) or the container's (startContainer: rootfs paths).
        try Files.write(script, """
            #!/bin/sh
            state=$(cat)
            status=$(echo "$state" | sed 's/.*"status" *: *"\\([a-z]*\\)".*/\\1/')
            echo "$1 $status $2" >> "$3"

            """, flags: O_WRONLY | O_CREAT | O_TRUNC)
        chmod(script, 0o755)
        // startContainer resolves in the container: give it a copy inside the rootfs.
        try Files.write(h.bundle + "/rootfs/hook.sh", try Files.readString(script), flags: O_WRONLY | O_CREAT | O_TRUNC)
        chmod(h.bundle + "/rootfs/hook.sh", 0o755)
        var s = Harness.spec(["sleep", "1000"])
        s.mounts?.append(Mount(destination: "/hooklog", type: "bind", source: h.dir, options: ["bind"]))
        var hooks = Hooks()
        func hook(_ kind: String, inContainer: Bool = false) -> [Hook] {
            [Hook(path: inContainer ? "/hook.sh" : script,
                  args: ["hook.sh", kind, "x", inContainer ? "/hooklog/hooks.log" : log], env: ["PATH=/bin:/usr/bin"], timeout: 10)]
        }
        hooks.prestart = hook("prestart")
        hooks.createRuntime = hook("createRuntime")
        hooks.createContainer = hook("createContainer")
        hooks.startContainer = hook("startContainer", inContainer: true)
        hooks.poststart = hook("poststart")
        hooks.poststop = hook("poststop")
        s.hooks = hooks
        try h.write(s)
        let id = Harness.uniqueID("hooks")
        #expect(h.brig(["create", "--bundle", h.bundle, id]).code == 0)
        #expect(h.brig(["start", id]).code == 0)
        #expect(h.brig(["delete", "--force", id]).code == 0)
        let lines = (try Files.readString(log)).split(separator: "\n").map { String($0.split(separator: " ")[0...1].joined(separator: " ")) }
        #expect(lines == ["prestart creating", "createRuntime creating", "createContainer creating",
                          "startContainer created", "poststart running", "poststop stopped"])
        h.assertClean(id)
    }

    @Test func failingCreateRuntimeHookAbortsCreateAndCleansUp() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["true"])
        var hooks = Hooks()
        hooks.createRuntime = [Hook(path: "/bin/sh", args: ["sh", "-c", "echo boom >&2; exit 3"])]
        s.hooks = hooks
        try h.write(s)
        let id = Harness.uniqueID("hookfail")
        let r = h.brig(["create", "--bundle", h.bundle, id])
        #expect(r.code != 0)
        #expect(r.err.contains("createRuntime hook #0 (/bin/sh) failed: exit status 3: boom"), "\(r.err)")
        h.assertClean(id)
    }

    @Test func hookTimeoutIsEnforced() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["true"])
        var hooks = Hooks()
        hooks.prestart = [Hook(path: "/bin/sleep", args: ["sleep", "30"], timeout: 1)]
        s.hooks = hooks
        try h.write(s)
        let id = Harness.uniqueID("hooktime")
        let r = h.brig(["create", "--bundle", h.bundle, id])
        #expect(r.err.contains("timed out after 1s"), "\(r.err)")
        h.assertClean(id)
    }

    @Test func failingPoststopIsAWarningAndDeleteSucceeds() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["true"])
        var hooks = Hooks()
        hooks.poststop = [Hook(path: "/bin/false"), Hook(path: "/bin/sh", args: ["sh", "-c", "echo ran > \(h.dir)/second"])]
        s.hooks = hooks
        try h.write(s)
        let id = Harness.uniqueID("poststop")
        #expect(h.brig(["create", "--bundle", h.bundle, id]).code == 0)
        let d = h.brig(["delete", "--force", id])
        #expect(d.code == 0)
        #expect(d.err.contains("poststop hook #0 (/bin/false) failed"))
        #expect(Files.exists(h.dir + "/second"), "the hook after a failing poststop hook did not run")
        h.assertClean(id)
    }
}
