import BrigOCI

/// Which backend runs a container.
public enum BackendKind: String, Sendable, CaseIterable {
    case namespaces, microvm
}

/// Chooses the backend for a new container, most specific first:
/// 1. the config's `vm` object (runtime-spec config-vm.md) → microvm;
/// 2. the annotation `run.oci.brig.backend` = namespaces | microvm;
/// 3. the global `--backend` flag (or `BRIG_BACKEND` in the environment);
/// 4. namespaces.
public enum BackendSelection {
    public static let annotation = "run.oci.brig.backend"

    public static func select(spec: Spec, flag: String?) throws(RuntimeError) -> BackendKind {
        let fromAnnotation = try spec.annotations?[annotation].map { v throws(RuntimeError) -> BackendKind in
            guard let k = BackendKind(rawValue: v) else {
                throw RuntimeError(.config, "annotations[\"\(annotation)\"]: unknown backend \"\(v)\" (expected namespaces or microvm)")
            }
            return k
        }
        if spec.vm != nil {
            if fromAnnotation == .namespaces {
                throw RuntimeError(.config, "annotations[\"\(annotation)\"] is \"namespaces\" but the config has a vm object (which selects microvm)")
            }
            return .microvm
        }
        if let fromAnnotation { return fromAnnotation }
        if let flag {
            guard let k = BackendKind(rawValue: flag) else {
                throw RuntimeError(.usage, "--backend: unknown backend \"\(flag)\" (expected namespaces or microvm)")
            }
            return k
        }
        return .namespaces
    }
}
