// Test executable for brig's VMM; `brig vm …` calls the same entry point.
import BrigVMM
#if canImport(Glibc)
import Glibc
#endif

exit(VMCommand.main(Array(CommandLine.arguments.dropFirst())))
