import BrigOCI

// MARK: - parsing shared by v1 and v2

/// v1 blkio files: `MAJ:MIN Op VALUE` lines (a `Total N` line is skipped).
func parseBlkioEntries(_ text: String) -> [BlkioEntry] {
    text.split(separator: "\n").compactMap { line in
        let f = line.split(separator: " ")
        guard f.count == 3, let v = UInt64(f[2]) else { return nil }
        let mm = f[0].split(separator: ":")
        guard mm.count == 2, let major = UInt64(mm[0]), let minor = UInt64(mm[1]) else { return nil }
        return BlkioEntry(major: major, minor: minor, op: String(f[1]), value: v)
    }
}

/// v2 io.stat: `MAJ:MIN rbytes=… wbytes=… rios=… wios=…` → bytes and ios entries.
func parseIOStat(_ text: String) -> (bytes: [BlkioEntry], ios: [BlkioEntry]) {
    var bytes: [BlkioEntry] = [], ios: [BlkioEntry] = []
    for line in text.split(separator: "\n") {
        let f = line.split(separator: " ")
        guard let dev = f.first else { continue }
        let mm = dev.split(separator: ":")
        guard mm.count == 2, let major = UInt64(mm[0]), let minor = UInt64(mm[1]) else { continue }
        for kv in f.dropFirst() {
            let p = kv.split(separator: "=")
            guard p.count == 2, let v = UInt64(p[1]) else { continue }
            switch p[0] {
            case "rbytes": bytes.append(BlkioEntry(major: major, minor: minor, op: "Read", value: v))
            case "wbytes": bytes.append(BlkioEntry(major: major, minor: minor, op: "Write", value: v))
            case "rios": ios.append(BlkioEntry(major: major, minor: minor, op: "Read", value: v))
            case "wios": ios.append(BlkioEntry(major: major, minor: minor, op: "Write", value: v))
            default: break
            }
        }
    }
    return (bytes, ios)
}

/// Page sizes with a hugetlb file `hugetlb.<size>.<suffix>` in a directory.
func hugePageSizes(_ dir: CgroupDirectory, suffix: String) -> [String] {
    dir.entries().compactMap { name in
        guard name.hasPrefix("hugetlb."), name.hasSuffix("." + suffix) else { return nil }
        let size = name.dropFirst("hugetlb.".count).dropLast(suffix.count + 1)
        return size.contains(".") || size.isEmpty ? nil : String(size)
    }
}
