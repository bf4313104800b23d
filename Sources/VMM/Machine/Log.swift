import Glibc

/// Where the VMM library's diagnostics go: stderr unless its host (the `brig vm` command, the
/// microvm monitor) says otherwise. The library never calls its commands' helpers.
public enum VMMLog {
    nonisolated(unsafe) public static var sink: (String) -> Void = { line in
        var m = line + "\n"
        _ = m.withUTF8 { Glibc.write(2, $0.baseAddress, $0.count) }
    }

    static func write(_ line: String) { sink(line) }
}
