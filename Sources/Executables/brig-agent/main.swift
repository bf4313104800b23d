import BrigAgent
import BrigAgentGuest
import Glibc

let argv = CommandLine.arguments
AgentMain.dispatchInit(argv)   // `brig-agent init`: never returns

// PID 1 of a microvm guest (docs/agent-guest.md): bring the guest up, leave PID 1 reaping and
// waiting to power off, and serve the transport the kernel command line names in the child.
if GuestInit.isPID1 {
    do { try GuestInit.bringUp() } catch {
        GuestInit.log("bring-up failed: \(error)")
        GuestInit.powerOff(status: 1)
    }
    GuestInit.superviseAgent()
    do {
        let server = try AgentServer()
        server.inGuest = true
        switch try Transport.fromCmdline().open() {
        case .connection(let fd): try server.serve(fd: fd)
        case .listener(let fd): try server.listen(fd: fd)
        }
        exit(0)
    } catch {
        GuestInit.log("\(error)")
        exit(1)
    }
}

exit(AgentMain.run(argv))
