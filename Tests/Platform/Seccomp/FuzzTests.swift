import BrigCore
@testable import BrigOCI
import BrigSeccomp
import FoundationEssentials
import Testing

/// SplitMix64: a small seeded generator, so a failing fuzz case can be replayed from its seed.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random `linux.seccomp` values: mostly plausible tokens, sometimes garbage.
struct SeccompFuzzer {
    var rng: SeededRandom

    static let actions = SeccompAction.knownNames + ["SCMP_ACT_KILLL", "scmp_act_allow", ""]
    static let ops = SeccompOperator.allCases.map(\.specName) + ["SCMP_CMP_XX", "", "EQ"]
    static let arches = Array(SeccompArchitectures.libseccompNames.keys) + ["SCMP_ARCH_Z80", "x86_64", ""]
    static let flags = SeccompFilterFlags.names.map(\.name) + ["SECCOMP_FILTER_FLAG_NEW_LISTENER", ""]
    static let names = ["read", "write", "mkdir", "personality", "clone", "socket", "getcwd", "uname",
                        "socketcall", "arm_fadvise64_64", "brig_nope", "", "mmap2", "_llseek"]

    mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &rng) < percent }

    mutating func garbage() -> String {
        let alphabet: [Character] = ["A", "_", "z", "0", "/", "\u{0}", "\n", "é", "💥", "\"", "\\", " "]
        let count = Int.random(in: 0...24, using: &rng)
        return String((0..<count).map { _ in alphabet.randomElement(using: &rng)! })
    }

    mutating func pick(_ pool: [String]) -> String { chance(85) ? pool.randomElement(using: &rng)! : garbage() }

    mutating func maybe<T>(_ percent: Int, _ make: (inout Self) -> T) -> T? { chance(percent) ? make(&self) : nil }

    mutating func number() -> UInt64 {
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: return UInt64.random(in: 0...8, using: &rng)
        case 1: return UInt64.max - UInt64.random(in: 0...2, using: &rng)
        case 2: return UInt64(UInt32.max)
        default: return rng.next()
        }
    }

    mutating func arg() -> SeccompArg {
        let index: UInt = chance(85) ? UInt.random(in: 0...5, using: &rng) : UInt(truncatingIfNeeded: number())
        return SeccompArg(index: index, value: number(), valueTwo: maybe(50) { $0.number() }, op: pick(Self.ops))
    }

    mutating func syscall() -> SeccompSyscall {
        let names = (0..<Int.random(in: 0...4, using: &rng)).map { _ in pick(Self.names) }
        let args = maybe(50) { f in (0..<Int.random(in: 0...8, using: &f.rng)).map { _ in f.arg() } }
        return SeccompSyscall(names: names, action: pick(Self.actions),
                              errnoRet: maybe(30) { UInt32(truncatingIfNeeded: $0.number()) }, args: args)
    }

    mutating func seccomp() -> Seccomp {
        Seccomp(defaultAction: pick(Self.actions),
                defaultErrnoRet: maybe(20) { UInt32(truncatingIfNeeded: $0.number()) },
                architectures: maybe(40) { f in (0..<Int.random(in: 0...3, using: &f.rng)).map { _ in f.pick(Self.arches) } },
                flags: maybe(40) { f in (0..<Int.random(in: 0...3, using: &f.rng)).map { _ in f.pick(Self.flags) } },
                listenerPath: maybe(30) { $0.chance(70) ? "/run/agent.sock" : $0.garbage() },
                listenerMetadata: maybe(20) { $0.garbage() },
                syscalls: maybe(90) { f in (0..<Int.random(in: 0...6, using: &f.rng)).map { _ in f.syscall() } })
    }
}

@Suite struct FuzzTests {
    /// compile() never traps: it returns a profile or throws a ConfigError naming a seccomp field.
    @Test func compileRandomProfiles() throws {
        var fuzzer = SeccompFuzzer(rng: SeededRandom(seed: 0x5EC_C0A9))
        var compiled = 0, rejected = 0
        for _ in 0..<4000 {
            let value = fuzzer.seccomp()
            do {
                let profile = try SeccompProfile.compile(value)
                compiled += 1
                #expect(profile.rules.allSatisfy { $0.conditions.count <= 6 && $0.conditions.allSatisfy { $0.index < 6 } })
                #expect(profile.defaultAction != .notify)
                if profile.usesNotify { #expect(profile.listenerPath?.hasPrefix("/") == true) }
            } catch {
                rejected += 1
                #expect(error.field.hasPrefix("linux.seccomp."), "\(error)")
            }
        }
        // Both outcomes must actually be exercised.
        #expect(compiled > 100, "compiled \(compiled)")
        #expect(rejected > 100, "rejected \(rejected)")
    }

    /// Valid profiles also survive a round trip through their JSON form and BPF export.
    @Test func compiledProfilesExport() throws {
        var fuzzer = SeccompFuzzer(rng: SeededRandom(seed: 42))
        var exported = 0
        for _ in 0..<1500 {
            guard let profile = try? SeccompProfile.compile(fuzzer.seccomp()) else { continue }
            let bpf = try profile.exportBPF()
            #expect(!bpf.isEmpty && bpf.count % 8 == 0)
            exported += 1
        }
        #expect(exported > 50)
    }

    static let validConfig: Data = {
        var spec = DefaultSpec.make()
        var linux = spec.linux ?? Linux()
        linux.seccomp = try? JSONDecoder().decode(Seccomp.self, from: Data(DefaultProfileFixture.json.utf8))
        spec.linux = linux
        return try! JSONEncoder().encode(spec)
    }()

    /// ConfigLoader.decode never traps on mutated config.json bytes: it returns or throws ConfigError.
    @Test func decodeMutatedConfigJSON() throws {
        let original = [UInt8](Self.validConfig)
        #expect(throws: Never.self) { _ = try ConfigLoader.decode(Array(Self.validConfig)) }
        var rng = SeededRandom(seed: 0xB1C)
        let interesting: [[UInt8]] = ["{", "}", "[", "]", "\"", ":", ",", "null", "-1", "1e999", "18446744073709551616",
                                      "\\u0000", "\\ud800", "true", "0.5", "\u{FF}", "\"\""].map { Array($0.utf8) }
        var decoded = 0, rejected = 0
        for _ in 0..<1500 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<5, using: &rng) {
                case 0: bytes[at] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...40, using: &rng)))
                case 2: bytes.insert(contentsOf: interesting.randomElement(using: &rng)!, at: at)
                case 3: bytes.removeSubrange(at...)
                default:
                    let from = Int.random(in: 0..<bytes.count, using: &rng)
                    bytes.insert(contentsOf: bytes[from..<min(bytes.count, from + 60)], at: at)
                }
                if bytes.isEmpty { bytes = [0x7b] }
            }
            do {
                let spec = try ConfigLoader.decode(Array(bytes))
                decoded += 1
                if let seccomp = spec.linux?.seccomp { _ = try? SeccompProfile.compile(seccomp) }
            } catch {
                rejected += 1
                #expect(!error.description.isEmpty)
            }
        }
        #expect(rejected > 500)
        #expect(decoded > 5, "some mutations (e.g. in string values) must still decode")
    }

    /// Random bytes and pathological nesting are rejected, not crashed on.
    @Test func decodeGarbage() throws {
        var rng = SeededRandom(seed: 7)
        for _ in 0..<500 {
            let bytes = (0..<Int.random(in: 0...200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(throws: ConfigError.self) { _ = try ConfigLoader.decode(Array(bytes)) }
        }
        for depth in [64, 600, 5000] {
            let nested = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
            #expect(throws: ConfigError.self) { _ = try ConfigLoader.decode(Array(nested.utf8)) }
            let objects = #"{"linux":"# + String(repeating: #"{"a":"#, count: depth) + "1" + String(repeating: "}", count: depth + 1)
            #expect(throws: ConfigError.self) { _ = try ConfigLoader.decode(Array(objects.utf8)) }
        }
    }
}
