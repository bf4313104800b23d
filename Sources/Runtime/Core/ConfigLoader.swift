import BrigJSON
import BrigOCI

/// Reads config.json with Spec's reader (BrigOCI's, over BrigJSON: no Foundation, no Codable),
/// turning its errors into a `ConfigError` that names the field.
public enum ConfigLoader {
    public static func decode(_ bytes: [UInt8]) throws(ConfigError) -> Spec {
        do { return try JSONDecoding.read(Spec.self, from: bytes) } catch { throw describe(error) }
    }

    static func path(_ codingPath: [any CodingKey]) -> String {
        var out = ""
        for key in codingPath {
            if let index = key.intValue { out += "[\(index)]" } else {
                if !out.isEmpty { out += "." }
                out += key.stringValue
            }
        }
        return out
    }

    static func describe(_ error: DecodingError) -> ConfigError {
        switch error {
        case .typeMismatch(let type, let ctx):
            return ConfigError(path(ctx.codingPath), "expected \(typeName(type))")
        case .valueNotFound(let type, let ctx):
            return ConfigError(path(ctx.codingPath), "expected \(typeName(type)), found null")
        case .keyNotFound(let key, let ctx):
            return ConfigError(path(ctx.codingPath + [key]), "required field is missing")
        case .dataCorrupted(let ctx):
            if ctx.codingPath.isEmpty { return ConfigError("", "config.json is not valid JSON") }
            return ConfigError(path(ctx.codingPath), "invalid value (\(ctx.debugDescription))")
        @unknown default:
            return ConfigError("", "invalid config: \(error)")
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is Int32.Type, is Int64.Type, is UInt.Type, is UInt16.Type, is UInt32.Type, is UInt64.Type:
            return "an integer"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "an object"
        }
    }
}

extension ContainerProcessState {
    /// The JSON a seccomp agent receives with the notify fd (`SeccompListener.send`): `pid` is the
    /// container process whose filter the fd belongs to (the init pid, as in runc); `metadata` is
    /// `listenerMetadata`.
    public static func json(state: ContainerState, pid: Int32? = nil, metadata: String?) -> [UInt8] {
        let payload = ContainerProcessState(state: state, pid: pid ?? state.pid, metadata: metadata)
        do {
            return try JSONEncoding.encode(payload)
        } catch {
            // Only strings and integers: encoding cannot fail on these.
            preconditionFailure("encoding ContainerProcessState failed: \(error)")
        }
    }
}
