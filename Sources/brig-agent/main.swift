import BrigAgent
import Glibc

let argv = CommandLine.arguments
AgentMain.dispatchInit(argv)   // `brig-agent init`: never returns

// GUEST BRING-UP HOOK: when getpid() == 1 this is the microvm guest's init. The `qemu` branch
// adds BrigAgentGuest here: `GuestInit.bringUp()` (mount /proc, /sys, /dev…) and then serves the
// vsock/serial transport, e.g. `try AgentServer(...).serve(fd: transport)`.
if getpid() == 1 {
    fputs("brig-agent: running as PID 1 without guest bring-up (BrigAgentGuest not linked)\n", stderr)
}

exit(AgentMain.run(argv))
