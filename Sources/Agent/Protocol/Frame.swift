import BrigLinux
import Glibc

/// brig-agent wire format, version `AgentProtocol.version`.
///
/// Every frame is a 9-byte header — u32 big-endian payload length, u8 kind, u32 big-endian
/// channel — followed by the payload. Control frames (hello, request, response, exit) carry JSON;
/// stdio frames carry raw bytes. The channel is the request id for request/response and the
/// process's stream id (its guest pid) for stdio and exit frames.
public enum AgentProtocol {
    public static let version = 1
    /// Largest payload either side accepts; a peer announcing more is hostile or broken.
    public static let maxPayload = 4 << 20
    public static let headerSize = 9
    /// Largest stdio chunk a sender puts in one frame.
    public static let chunk = 32 << 10
}

public enum FrameKind: UInt8, Sendable {
    case hello = 1, request, response, stdin, stdout, stderr, closeStdin, exit
    /// agent → host during a `create` with `hostHooks`: the container's namespaces exist, run
    /// prestart/createRuntime now (channel: the create's request id; payload `AgentHooksDue`).
    case hooks
    /// host → agent: the hooks ran (payload `AgentHooksDone`, with the failure if one failed).
    case hooksDone
}

public struct Frame: Equatable, Sendable {
    public var kind: FrameKind
    public var channel: UInt32
    public var payload: [UInt8]
    public init(_ kind: FrameKind, channel: UInt32 = 0, _ payload: [UInt8] = []) {
        self.kind = kind; self.channel = channel; self.payload = payload
    }

    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(AgentProtocol.headerSize + payload.count)
        appendBE(&out, UInt32(payload.count))
        out.append(kind.rawValue)
        appendBE(&out, channel)
        out.append(contentsOf: payload)
        return out
    }
}

private func appendBE(_ out: inout [UInt8], _ v: UInt32) {
    out.append(UInt8(v >> 24)); out.append(UInt8((v >> 16) & 0xff)); out.append(UInt8((v >> 8) & 0xff)); out.append(UInt8(v & 0xff))
}

private func readBE(_ b: ArraySlice<UInt8>, _ at: Int) -> UInt32 {
    let i = b.startIndex + at
    return UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
}

/// Accumulates bytes from a stream and cuts them into frames. Malformed input (unknown kind,
/// oversized length) is an error; a partial frame waits for more bytes.
public struct FrameDecoder: Sendable {
    private var buffer: [UInt8] = []
    public init() {}

    public var buffered: Int { buffer.count }

    public mutating func feed(_ bytes: some Sequence<UInt8>) { buffer.append(contentsOf: bytes) }

    /// The next complete frame, or nil if more bytes are needed.
    public mutating func next() throws(AgentError) -> Frame? {
        guard buffer.count >= AgentProtocol.headerSize else { return nil }
        let length = Int(readBE(buffer[...], 0))
        guard length <= AgentProtocol.maxPayload else {
            throw AgentError(.protocolError, "frame of \(length) bytes exceeds the \(AgentProtocol.maxPayload)-byte limit")
        }
        guard let kind = FrameKind(rawValue: buffer[4]) else {
            throw AgentError(.protocolError, "unknown frame kind \(buffer[4])")
        }
        guard buffer.count >= AgentProtocol.headerSize + length else { return nil }
        let channel = readBE(buffer[...], 5)
        let payload = Array(buffer[AgentProtocol.headerSize ..< AgentProtocol.headerSize + length])
        buffer.removeFirst(AgentProtocol.headerSize + length)
        return Frame(kind, channel: channel, payload)
    }
}

/// A framed byte stream over one fd (socket, pipe pair end, serial line). Blocking I/O.
public final class FrameStream {
    public let fd: Int32
    private var decoder = FrameDecoder()
    public init(fd: Int32) { self.fd = fd }

    public func send(_ frame: Frame) throws(AgentError) {
        guard frame.payload.count <= AgentProtocol.maxPayload else {
            throw AgentError(.protocolError, "refusing to send a \(frame.payload.count)-byte frame")
        }
        do { try Files.writeAll(fd: fd, frame.encoded(), "write to agent connection") } catch {
            throw AgentError(.connection, "\(error)")
        }
    }

    /// Reads once (whatever is available) into the decoder. Returns false at EOF.
    public func fill() throws(AgentError) -> Bool {
        var buf = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 { decoder.feed(buf[0..<n]); return true }
            if n == 0 { return false }
            if errno == EINTR { continue }
            if errno == EAGAIN { return true }   // a non-blocking fd with nothing yet
            throw AgentError(.connection, "\(SystemError.last("read from agent connection"))")
        }
    }

    /// A complete frame already buffered, without reading.
    public func buffered() throws(AgentError) -> Frame? { try decoder.next() }

    public var hasBufferedBytes: Bool { decoder.buffered > 0 }

    /// Blocks until a whole frame arrives. EOF mid-frame or before any frame is a connection error.
    public func receive() throws(AgentError) -> Frame {
        while true {
            if let f = try decoder.next() { return f }
            guard try fill() else {
                throw AgentError(.connection, decoder.buffered == 0
                    ? "agent connection closed" : "agent connection closed in the middle of a frame")
            }
        }
    }
}
