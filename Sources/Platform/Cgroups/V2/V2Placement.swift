import BrigOCI
import Glibc

/// Where a container's cgroup sits on the cgroup2 tree, and why it cannot hold what the
/// container asks for. Everything here reads the cgroupfs from the mount down to the leaf, so
/// the same diagnosis works at `create` and in a later `update` (nothing is remembered between).
/// The kernel's rules it explains (Documentation/admin-guide/cgroup-v2.rst):
/// - a controller is usable in a cgroup only if every ancestor enables it in
///   cgroup.subtree_control, and a non-root cgroup holding processes cannot enable domain
///   controllers (EBUSY, the no-internal-processes rule);
/// - a threaded cgroup (and a cgroup left "domain invalid" below one) only has the threaded
///   controllers;
/// - mkdir fails with EAGAIN when an ancestor's cgroup.max.depth/max.descendants is reached;
/// - a cgroup below one whose cgroup.freeze is 1 is frozen, and so would be the container.
struct V2Placement {
    /// The cgroup2 mount point ("" when unknown: nothing above the leaf is looked at).
    let mount: String
    /// The container's cgroup.
    let leaf: CgroupDirectory
    /// Whether this process may write a file (tests run as root, where it always may).
    var mayWrite: (String) -> Bool = { access($0, W_OK) == 0 }

    /// The controllers that only exist in threaded form too (cgroup_subsys.threaded); every
    /// other one is a domain controller.
    static let threadedControllers: Set<String> = ["cpu", "cpuset", "perf_event", "pids"]

    /// The cgroups from the mount down to the leaf's parent (empty when the leaf is the mount or
    /// not below it).
    var ancestors: [CgroupDirectory] {
        guard !mount.isEmpty, leaf.path.hasPrefix(mount + "/") else { return [] }
        var out = [CgroupDirectory(mount)]
        var current = mount
        for comp in leaf.path.dropFirst(mount.count + 1).split(separator: "/").dropLast() {
            current += "/" + comp
            out.append(CgroupDirectory(current))
        }
        return out
    }

    // MARK: controllers

    /// Fails, saying why, when a controller `needed` lists is missing from the leaf's
    /// cgroup.controllers, or when domain controllers are asked of a threaded (or invalid)
    /// cgroup (runc: `cannot enter cgroupv2 … with domain controllers`). A leaf without
    /// cgroup.controllers is not on a cgroupfs and is not checked.
    func check(_ needed: [(field: String, controller: String)]) throws {
        guard let available = leaf.words("cgroup.controllers") else { return }
        for (field, controller) in needed where !available.contains(controller) {
            throw whyMissing(controller, field: field)
        }
        if let type = leaf.nonDomainType,
           let domain = needed.first(where: { !Self.threadedControllers.contains($0.controller) }) {
            throw threaded(domain.field, type)
        }
    }

    /// A "domain invalid" leaf (created below a threaded cgroup or a thread root) cannot take
    /// processes; when only threaded controllers are needed it is turned threaded, as runc does.
    func makeThreadedIfInvalid() throws {
        if leaf.nonDomainType == "domain invalid" { try leaf.write("cgroup.type", "threaded") }
    }

    /// Walks from the mount down to the first cgroup that does not pass `controller` on to its
    /// children, and says why it does not.
    func whyMissing(_ controller: String, field: String) -> CgroupError {
        func error(_ reason: String) -> CgroupError { .unsupported(field: field, reason: reason) }
        let chain = ancestors
        let isDomain = !Self.threadedControllers.contains(controller)
        for (i, a) in chain.enumerated() {
            guard (a.words("cgroup.controllers") ?? []).contains(controller) else {
                if i == 0 {
                    return error("the \(controller) controller is not available on this host: \(a.file("cgroup.controllers")) does not list it")
                }
                break
            }
            if (a.words("cgroup.subtree_control") ?? []).contains(controller) { continue }
            let child = i + 1 < chain.count ? chain[i + 1].path : leaf.path
            // The root cgroup (no cgroup.type) is exempt from the no-internal-processes rule.
            if isDomain && a.exists("cgroup.type") && a.holdsProcesses {
                return error("the \(controller) controller cannot be enabled for \(leaf.path): \(a.path) holds processes (cgroup v2 no-internal-processes rule)")
            }
            if isDomain, let type = leaf.nonDomainType { return threaded(field, type) }
            let control = a.file("cgroup.subtree_control")
            if !mayWrite(control) {
                return error("the \(controller) controller is not delegated to \(child): \(control) does not enable it and uid \(geteuid()) may not write it")
            }
            return error("the \(controller) controller is not enabled for \(child): \(control) does not list it")
        }
        if isDomain, let type = leaf.nonDomainType { return threaded(field, type) }
        return error("the \(controller) controller is not available in \(leaf.path): \(leaf.file("cgroup.controllers")) does not list it")
    }

    /// runc's wording, plus the thread root that made an invalid leaf invalid.
    func threaded(_ field: String, _ type: String) -> CgroupError {
        var reason = "cannot enter cgroupv2 \"\(leaf.path)\" with domain controllers -- it is in "
            + (type == "domain invalid" ? "an invalid state" : "\(type) mode")
        if type == "domain invalid", let root = ancestors.last(where: { $0.nonDomainType != nil }) {
            reason += " (\(root.path) is in \(root.nonDomainType!) mode)"
        }
        return .unsupported(field: field, reason: reason)
    }

    // MARK: creation

    /// Why mkdir of `path` got EAGAIN: the nearest ancestor whose cgroup.max.descendants or
    /// cgroup.max.depth is reached (the kernel's cgroup_check_hierarchy_limits), or nil.
    static func hierarchyLimit(creating path: String, mount: String) -> CgroupError? {
        var dir = CgroupPath.parent(path)
        var level = 1
        while dir == mount || dir.hasPrefix(mount + "/") {
            let d = CgroupDirectory(dir)
            if let max = try? d.readUInt("cgroup.max.descendants"), max != .max,
               let n = try? d.readKeyValues("cgroup.stat")["nr_descendants"], n >= max {
                return .hierarchyLimit(path: path, limitFile: d.file("cgroup.max.descendants"),
                                       detail: "\(max) and \(dir) already has \(n) descendant cgroup(s)")
            }
            if let depth = try? d.readUInt("cgroup.max.depth"), depth != .max, level > depth {
                return .hierarchyLimit(path: path, limitFile: d.file("cgroup.max.depth"),
                                       detail: "\(depth) and \(path) would be \(level) level(s) below \(dir)")
            }
            if dir == mount { break }
            dir = CgroupPath.parent(dir)
            level += 1
        }
        return nil
    }

    /// Fails when the leaf is frozen or would be (its own or an ancestor's cgroup.freeze is 1,
    /// or cgroup.events says `frozen 1`): runc's "container's cgroup unexpectedly frozen".
    func refuseFrozen() throws {
        if let f = (ancestors + [leaf]).last(where: { (try? $0.read("cgroup.freeze"))?.trimmingWhitespace == "1" }) {
            throw CgroupError.frozen(path: leaf.path, reason: "\(f.file("cgroup.freeze")) is 1")
        }
        if leaf.exists("cgroup.events"), (try? leaf.readKeyValues("cgroup.events"))?["frozen"] == 1 {
            throw CgroupError.frozen(path: leaf.path, reason: "\(leaf.file("cgroup.events")) says frozen 1")
        }
    }
}

extension CgroupDirectory {
    /// The entries of a space-separated list file (cgroup.controllers, cgroup.subtree_control),
    /// or nil when it cannot be read.
    func words(_ name: String) -> Set<String>? {
        guard let text = try? read(name) else { return nil }
        return Set(text.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
    }

    /// Whether cgroup.procs lists any process.
    var holdsProcesses: Bool { !((try? read("cgroup.procs")) ?? "").trimmingWhitespace.isEmpty }

    /// cgroup.type when it is not `domain` (`threaded`, `domain threaded`, `domain invalid`);
    /// nil for a domain and for the root (which has no cgroup.type).
    var nonDomainType: String? {
        guard let t = (try? read("cgroup.type"))?.trimmingWhitespace, !t.isEmpty, t != "domain" else { return nil }
        return t
    }
}
