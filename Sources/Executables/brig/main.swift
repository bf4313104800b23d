import BrigCLI
import Glibc

exit(CLI.main(CommandLine.arguments))
