// brig-seccomp-probe: loads a seccomp profile with BrigSeccomp, then makes one raw syscall and
// prints its outcome. The kernel tests spawn it (a forked copy of the multithreaded test process
// could do nothing but async-signal-safe work).
//
//   brig-seccomp-probe <seccomp.json> <syscall name or number> [arg...]
//
// <seccomp.json> holds a `linux.seccomp` object. Arguments are integers (decimal or 0x-hex) or
// `s:text` for a pointer to the C string "text". If the profile has a listenerPath, the notify fd
// is first sent there as runc would. Prints `ok <return value>` or `errno <n>` on stdout, exit 0;
// usage and profile errors go to stderr with exit 2.
import BrigCore
import BrigJSON
import BrigOCI
import BrigSeccomp
import CBrigSeccompShim
import Glibc

func log(_ message: String) {
    let line = Array("brig-seccomp-probe: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

func fail(_ message: String) -> Never {
    log(message)
    exit(2)
}

func readFile(_ path: String) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { fail("open \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { fail("read \(path): \(String(cString: strerror(errno)))") }
        if n == 0 { return data }
        data.append(contentsOf: chunk[0..<n])
    }
}

func argument(_ text: String) -> UInt {
    if text.hasPrefix("s:") { return UInt(bitPattern: strdup(String(text.dropFirst(2)))) }
    if text.hasPrefix("0x"), let v = UInt(text.dropFirst(2), radix: 16) { return v }
    if let v = UInt(text) { return v }
    if let v = Int(text) { return UInt(bitPattern: v) }
    fail("bad argument \(text)")
}

let args = CommandLine.arguments
guard args.count >= 3, args.count <= 9 else { fail("usage: brig-seccomp-probe <seccomp.json> <syscall> [arg...]") }
let seccomp: Seccomp
do { seccomp = try JSONDecoding.decode(Seccomp.self, from: readFile(args[1])) } catch { fail("profile: \(error)") }
let profile: CompiledProfile
do { profile = try SeccompProfile.compile(seccomp) } catch { fail("compile: \(error)") }
for skipped in profile.skipped { log("skipped unknown syscall \(skipped.name) (\(skipped.field))") }
guard let nr = Int32(args[2]) ?? resolveSyscall(args[2]), nr >= 0 else { fail("unknown syscall \(args[2])") }
var callArgs = args.dropFirst(3).map(argument)
while callArgs.count < 6 { callArgs.append(0) }

let notifyFD: Int32?
do { notifyFD = try profile.load() } catch { fail("load: \(error)") }
if let notifyFD, let listenerPath = profile.listenerPath {
    let state = ContainerState(id: "probe", status: .running, pid: getpid(), bundle: "/", rootfs: "/",
                               created: "1970-01-01T00:00:00Z")
    let payload = ContainerProcessState.json(state: state, metadata: profile.listenerMetadata)
    do { try SeccompListener.send(notifyFD: notifyFD, listenerPath: listenerPath, state: payload) } catch {
        fail("\(error)")
    }
    close(notifyFD)
}

let result = brig_sc_syscall6(Int(nr), callArgs[0], callArgs[1], callArgs[2], callArgs[3], callArgs[4], callArgs[5])
print(result == -1 ? "errno \(errno)" : "ok \(result)")
exit(0)
