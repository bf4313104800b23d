import BrigOCI

extension Container {
    /// The container's processes as its backend sees them (`reportsHostPids` says whether they
    /// are host pids). A stopped container has none (runc: exit 0), unless some are left.
    public func pids() throws(RuntimeError) -> [Int32] {
        if status == .stopped { return (try? backend.pids(record)) ?? [] }
        return try backend.pids(record)
    }
}
