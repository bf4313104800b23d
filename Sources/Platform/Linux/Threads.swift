import Glibc

/// Plain pthreads (FoundationEssentials has no Thread): the VMM's vCPU and device threads, the
/// microvm monitor's helpers.
public enum Threads {
    final class Body { let fn: () -> Void; init(_ fn: @escaping () -> Void) { self.fn = fn } }

    /// Starts `fn` on a new joinable thread.
    public static func spawn(_ fn: @escaping () -> Void) -> pthread_t {
        var t = pthread_t()
        let arg = Unmanaged.passRetained(Body(fn)).toOpaque()
        let rc = pthread_create(&t, nil, { p in
            Unmanaged<Body>.fromOpaque(p!).takeRetainedValue().fn()
            return nil
        }, arg)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        return t
    }

    /// Starts `fn` on a new thread nobody joins.
    public static func detach(_ fn: @escaping () -> Void) {
        pthread_detach(spawn(fn))
    }
}

/// CLOCK_MONOTONIC in seconds.
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
