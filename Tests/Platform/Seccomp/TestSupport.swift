import BrigOCI
import BrigSeccomp
import FoundationEssentials
import Glibc
import Testing

/// Decodes a `linux.seccomp` JSON object.
func seccomp(_ json: String) throws -> Seccomp {
    try JSONDecoder().decode(Seccomp.self, from: Data(json.utf8))
}

/// Compiles a `linux.seccomp` JSON object.
func compile(_ json: String) throws -> CompiledProfile {
    try SeccompProfile.compile(try seccomp(json))
}

/// The ConfigError that compiling `json` throws, or nil if it compiles.
func compileError(_ json: String) throws -> ConfigError? {
    let value = try seccomp(json)
    do {
        _ = try SeccompProfile.compile(value)
        return nil
    } catch {
        return error
    }
}

/// A fresh private directory under /tmp (short, so socket paths fit in sun_path).
func makeTempDir() -> String {
    let template = strdup("/tmp/brig-sc-XXXXXX")!
    defer { free(template) }
    guard let made = mkdtemp(template) else { preconditionFailure("mkdtemp failed") }
    return String(cString: made)
}

func removeTree(_ path: String) {
    _ = path.withCString { unlink($0) }
    guard let dir = opendir(path) else { return }
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        if name == "." || name == ".." { continue }
        let child = path + "/" + name
        if rmdir(child) != 0 { unlink(child) }
    }
    closedir(dir)
    rmdir(path)
}

func writeFile(_ path: String, _ text: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    precondition(fd >= 0, "open \(path) failed")
    let bytes = Array(text.utf8)
    let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    precondition(n == bytes.count)
    close(fd)
}

/// Reads everything from `fd` until EOF.
func readAll(_ fd: Int32) -> String {
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        out += chunk[0..<n]
    }
    return String(decoding: out, as: UTF8.self)
}

/// Where the probe executable lives: next to the test bundle (e.g. `.build-sc/debug/`).
func probePath() -> String? {
    var buffer = [UInt8](repeating: 0, count: 4096)
    let n = buffer.withUnsafeMutableBytes { readlink("/proc/self/exe", $0.baseAddress!, $0.count - 1) }
    guard n > 0 else { return nil }
    var dir = String(decoding: buffer[0..<n], as: UTF8.self)
    while let last = dir.last, last != "/" { dir.removeLast() }
    let path = dir + "brig-seccomp-probe"
    return access(path, X_OK) == 0 ? path : nil
}

/// How a probe run ended.
struct ProbeResult {
    var pid: pid_t
    /// Exit status, or nil if killed by a signal.
    var exitCode: Int32?
    var signal: Int32?
    var stdout: String
    var stderr: String
}

/// A spawned probe whose output is collected by `finish()`.
struct RunningProbe {
    var pid: pid_t
    var stdoutFD: Int32
    var stderrFD: Int32

    func finish() -> ProbeResult {
        let out = readAll(stdoutFD)
        let err = readAll(stderrFD)
        close(stdoutFD); close(stderrFD)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signal = status & 0x7f
        return ProbeResult(pid: pid, exitCode: signal == 0 ? (status >> 8) & 0xff : nil,
                           signal: signal == 0 ? nil : signal, stdout: out, stderr: err)
    }
}

/// Spawns the probe with posix_spawn (never fork in the multithreaded test process). Records a
/// test failure and returns nil if the probe executable was not built.
func spawnProbe(profile: String, _ arguments: [String], in dir: String) -> RunningProbe? {
    guard let probe = probePath() else {
        Issue.record("brig-seccomp-probe not found next to the test bundle; build it with `swift build --scratch-path .build-sc --product brig-seccomp-probe`")
        return nil
    }
    let profilePath = dir + "/seccomp-\(UInt32.random(in: 0...UInt32.max)).json"
    writeFile(profilePath, profile)
    // Close-on-exec from the start (socketpair, as Glibc lacks pipe2 here), so that probes spawned
    // concurrently by other tests don't inherit our write ends.
    var outPipe: [Int32] = [0, 0], errPipe: [Int32] = [0, 0]
    let streamCloexec = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
    precondition(socketpair(AF_UNIX, streamCloexec, 0, &outPipe) == 0)
    precondition(socketpair(AF_UNIX, streamCloexec, 0, &errPipe) == 0)
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
    posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
    let argv = ([probe, profilePath] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, probe, &actions, nil, argv, environ)
    close(outPipe[1]); close(errPipe[1])
    guard rc == 0 else {
        Issue.record("posix_spawn \(probe): \(String(cString: strerror(rc)))")
        close(outPipe[0]); close(errPipe[0])
        return nil
    }
    return RunningProbe(pid: pid, stdoutFD: outPipe[0], stderrFD: errPipe[0])
}

/// Runs the probe to completion.
func runProbe(profile: String, _ arguments: [String]) -> ProbeResult? {
    let dir = makeTempDir()
    defer { removeTree(dir) }
    return spawnProbe(profile: profile, arguments, in: dir)?.finish()
}
