import BrigJSON

/// JSON for control payloads; a payload that does not decode is a protocol error, never a crash.
public enum AgentCoding {
    public static func encode<T: Encodable>(_ value: T) throws(AgentError) -> [UInt8] {
        do { return try JSONEncoding.encode(value) } catch {
            throw AgentError(.internalError, "encode \(T.self): \(error)")
        }
    }

    public static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws(AgentError) -> T {
        do { return try JSONDecoding.decode(type, from: bytes) } catch {
            throw AgentError(.protocolError, "malformed \(T.self): \(error)")
        }
    }
}
