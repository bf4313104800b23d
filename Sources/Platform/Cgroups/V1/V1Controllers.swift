import BrigOCI

/// cgroup v1 pids, blkio, hugetlb, net_cls, net_prio and rdma controllers.
public enum V1Controllers {
    /// pids.max (`max` for a limit ≤ 0).
    public static func applyPids(_ p: Resources.Pids, _ dir: CgroupDirectory) throws {
        try dir.write("pids.max", pidsMax(p.limit), field: field("pids.limit"))
    }

    /// blkio.weight / leaf_weight (or their `blkio.bfq.` variants when only BFQ is present),
    /// weight_device lines `MAJ:MIN W`, and blkio.throttle.* lines `MAJ:MIN RATE`.
    public static func applyBlockIO(_ b: Resources.BlockIO, _ dir: CgroupDirectory) throws {
        let prefix = !dir.exists("blkio.weight") && dir.exists("blkio.bfq.weight") ? "blkio.bfq." : "blkio."
        if let w = b.weight, w != 0 {
            try dir.write(prefix + "weight", String(w), field: field("blockIO.weight"))
        }
        if let w = b.leafWeight, w != 0 {
            try dir.write("blkio.leaf_weight", String(w), field: field("blockIO.leafWeight"))
        }
        for wd in b.weightDevice ?? [] {
            if let w = wd.weight {
                try dir.write(prefix + "weight_device", "\(wd.major):\(wd.minor) \(w)", field: field("blockIO.weightDevice"))
            }
            if let w = wd.leafWeight {
                try dir.write("blkio.leaf_weight_device", "\(wd.major):\(wd.minor) \(w)", field: field("blockIO.weightDevice"))
            }
        }
        for (file, name, list) in throttles(b) {
            for t in list {
                try dir.write("blkio.throttle." + file, "\(t.major):\(t.minor) \(t.rate)", field: field("blockIO." + name))
            }
        }
    }

    static func throttles(_ b: Resources.BlockIO) -> [(String, String, [Resources.ThrottleDevice])] {
        [("read_bps_device", "throttleReadBpsDevice", b.throttleReadBpsDevice ?? []),
         ("write_bps_device", "throttleWriteBpsDevice", b.throttleWriteBpsDevice ?? []),
         ("read_iops_device", "throttleReadIOPSDevice", b.throttleReadIOPSDevice ?? []),
         ("write_iops_device", "throttleWriteIOPSDevice", b.throttleWriteIOPSDevice ?? [])]
    }

    /// hugetlb.<size>.limit_in_bytes (and .rsvd.limit_in_bytes when the kernel has it).
    public static func applyHugetlb(_ limits: [Resources.HugepageLimit], _ dir: CgroupDirectory) throws {
        try applyHugetlbLimits(limits, dir, limitFile: "limit_in_bytes")
    }

    /// net_cls.classid.
    public static func applyNetCls(_ n: Resources.Network, _ dir: CgroupDirectory) throws {
        if let id = n.classID { try dir.write("net_cls.classid", String(id), field: field("network.classID")) }
    }

    /// net_prio.ifpriomap, one `IFNAME PRIO` line per interface.
    public static func applyNetPrio(_ n: Resources.Network, _ dir: CgroupDirectory) throws {
        for p in n.priorities ?? [] {
            try dir.write("net_prio.ifpriomap", "\(p.name) \(p.priority)", field: field("network.priorities"))
        }
    }

    /// rdma.max, one line per device (sorted by device name).
    public static func applyRdma(_ r: [String: Resources.RdmaLimit], _ dir: CgroupDirectory) throws {
        for (device, limit) in r.sorted(by: { $0.key < $1.key }) {
            try dir.write("rdma.max", rdmaLine(device, limit), field: field("rdma"))
        }
    }
}
