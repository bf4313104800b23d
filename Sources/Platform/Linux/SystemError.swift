import Glibc

/// The one place where errno becomes a Swift error. Every syscall wrapper in brig goes through
/// `sys(_:_:)` or `SystemError.last(_:)`, so messages always say what was being done, to what.
public struct SystemError: Error, CustomStringConvertible, Equatable, Sendable {
    public var errno: Int32
    /// What was being attempted, e.g. `mount proc on /proc`.
    public var operation: String

    public init(errno: Int32, _ operation: String) { self.errno = errno; self.operation = operation }

    /// Captures the current `errno`.
    public static func last(_ operation: String) -> SystemError {
        SystemError(errno: Glibc.errno, operation)
    }

    public var description: String {
        "\(operation): \(String(cString: strerror(errno)))"
    }
}

/// Runs a syscall-style call that returns -1 on error, retrying on EINTR.
@discardableResult
@inline(__always)
public func sys<T: BinaryInteger>(_ operation: @autoclosure () -> String, _ call: () -> T) throws(SystemError) -> T {
    while true {
        let r = call()
        if r != -1 { return r }
        let e = Glibc.errno
        if e == EINTR { continue }
        throw SystemError(errno: e, operation())
    }
}
