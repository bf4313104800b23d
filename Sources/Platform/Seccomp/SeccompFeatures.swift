import CBrigSeccompShim
import CSeccomp

/// The `linux.seccomp` object of `features` output (runtime-spec features-linux.md), as
/// `runc features` reports it.
public struct SeccompFeatures: Codable, Sendable, Equatable {
    public var enabled: Bool
    public var actions: [String]
    public var operators: [String]
    public var archs: [String]
    public var knownFlags: [String]
    /// The subset of `knownFlags` this kernel accepts.
    public var supportedFlags: [String]

    /// What this build and the running kernel support.
    public static func current() -> SeccompFeatures {
        SeccompFeatures(
            enabled: true,
            actions: SeccompAction.knownNames,
            operators: SeccompOperator.allCases.map(\.specName).sorted(),
            archs: SeccompArchitectures.libseccompNames.keys.filter { SeccompArchitectures.token($0) != nil }.sorted(),
            knownFlags: SeccompFilterFlags.names.map(\.name),
            supportedFlags: SeccompFilterFlags.names.filter { kernelAccepts($0.flag) }.map(\.name))
    }

    /// Asks seccomp(2) whether it accepts a flag (installing nothing). TSYNC is accepted and ignored by brig, so it is always supported.
    static func kernelAccepts(_ flag: SeccompFilterFlags) -> Bool {
        if flag == .tsync { return true }
        var bits = flag.rawValue
        if flag == .waitKillableRecv { bits |= 1 << 3 }  // only valid together with NEW_LISTENER
        return brig_sc_filter_flags_supported(bits) != 0
    }
}
