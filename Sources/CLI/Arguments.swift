import BrigCore

/// Flag parsing as runc's CLI library does it: `--flag value`, `--flag=value`, `-flag value`,
/// short aliases, booleans with optional `=true|false`, and `--` to end flags.
public struct FlagSpec: Sendable {
    public var names: [String]      // first is canonical, e.g. ["bundle", "b"]
    public var value: String?       // placeholder for help when the flag takes a value
    public var help: String
    public init(_ names: [String], value: String? = nil, _ help: String) { self.names = names; self.value = value; self.help = help }
}

public struct ParsedArgs {
    public var flags: [String: [String]] = [:]
    public var positionals: [String] = []

    public func has(_ name: String) -> Bool {
        guard let v = flags[name]?.last else { return false }
        return v != "false"
    }
    public func value(_ name: String) -> String? { flags[name]?.last }
    public func values(_ name: String) -> [String] { flags[name] ?? [] }
}

public enum ArgumentParser {
    /// Parses `args`. With `stopAtPositional`, parsing ends at the first positional (global
    /// flags before the verb) and the rest is returned untouched as positionals.
    public static func parse(_ args: [String], specs: [FlagSpec], stopAtPositional: Bool = false) throws(RuntimeError) -> ParsedArgs {
        var out = ParsedArgs()
        var i = 0
        while i < args.count {
            let arg = args[i]
            if arg == "--" { out.positionals += args[(i + 1)...]; break }
            guard arg.hasPrefix("-"), arg.count > 1 else {
                if stopAtPositional { out.positionals += args[i...]; break }
                out.positionals.append(arg); i += 1; continue
            }
            var name = String(arg.drop(while: { $0 == "-" }))
            var inline: String? = nil
            if let eq = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: eq)...]); name = String(name[..<eq])
            }
            guard let spec = specs.first(where: { $0.names.contains(name) }) else {
                throw RuntimeError(.usage, "flag provided but not defined: -\(name)")
            }
            let key = spec.names[0]
            if spec.value != nil {
                if let v = inline { out.flags[key, default: []].append(v) }
                else {
                    guard i + 1 < args.count else { throw RuntimeError(.usage, "flag needs an argument: -\(name)") }
                    out.flags[key, default: []].append(args[i + 1]); i += 1
                }
            } else {
                out.flags[key, default: []].append(inline ?? "true")
            }
            i += 1
        }
        return out
    }

    public static func help(_ specs: [FlagSpec]) -> String {
        specs.map { s in
            let names = s.names.map { $0.count == 1 ? "-\($0)" : "--\($0)" }.joined(separator: ", ")
            let left = "   " + names + (s.value.map { " " + $0 } ?? "")
            return left.padding(to: 36) + s.help
        }.joined(separator: "\n")
    }
}

extension String {
    func padding(to width: Int) -> String {
        count >= width ? self + "  " : self + String(repeating: " ", count: width - count)
    }
}
