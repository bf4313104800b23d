import BrigCore
import BrigVMM

/// `brig vm …`: the VMM's developer entry point (boot a kernel with the console on stdout).
enum VMVerb: Verb {
    static let name = "vm"
    static let usage = "boot --kernel K [--initrd I] [--disk D [--disk-ro]] [--mem 256M] [--cpus 1] [--cmdline \"...\"] [--seccomp] | jail-check PROBE..."
    static let summary = "run brig's VMM directly: boot a guest kernel with its console on stdout"
    static let flags: [FlagSpec] = []
    static let stopsAtPositional = true

    static func run(_ args: ParsedArgs, _ ctx: Context) throws(RuntimeError) -> Int32 {
        VMCommand.main(args.positionals)
    }
}
