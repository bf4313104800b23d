import BrigCgroups
import BrigCore

/// The namespaces backend's part of a record (BackendHandle.namespaces): its cgroup state.
extension ContainerRecord {
    var namespacesHandle: NamespacesHandle {
        if case .namespaces(let h) = handle { return h }
        return NamespacesHandle()
    }

    /// The container's cgroup on every hierarchy (another backend's record has none).
    var cgroup: CgroupState {
        get { CgroupState(namespacesHandle.cgroup) }
        set { handle = .namespaces(NamespacesHandle(cgroup: CgroupRecord(newValue), systemdCgroup: namespacesHandle.systemdCgroup)) }
    }

    /// Its manager, rebuilt from the record.
    var cgroupManager: any CgroupManager { makeCgroupManager(state: cgroup) }
}

extension CgroupState {
    /// From a record (an unknown mode, which no brig writes, reads as legacy: paths decide).
    public init(_ r: CgroupRecord) {
        self.init(mode: CgroupMode(rawValue: r.mode) ?? .legacy, paths: r.paths, unifiedMount: r.unifiedMount,
                  created: r.created, joinedExisting: r.joinedExisting)
        systemd = r.systemd.map { u in
            var unit = SystemdUnit(name: u.name, slice: u.slice, user: u.user, containerID: u.containerID)
            unit.started = u.started
            return unit
        }
    }
}

extension CgroupRecord {
    public init(_ s: CgroupState) {
        self.init(mode: s.mode.rawValue, paths: s.paths, unifiedMount: s.unifiedMount, created: s.created,
                  joinedExisting: s.joinedExisting,
                  systemd: s.systemd.map { SystemdUnitRecord(name: $0.name, slice: $0.slice, user: $0.user,
                                                              containerID: $0.containerID, started: $0.started) })
    }
}
