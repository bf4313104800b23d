/// A classic-BPF interpreter for seccomp programs, enough for what libseccomp and the ENOSYS stub
/// emit. Lets tests check filter semantics for any architecture without loading anything.
struct BPFInterpreter {
    struct Call {
        var arch: UInt32
        var nr: UInt32
        var args: [UInt64] = [0, 0, 0, 0, 0, 0]
    }

    let program: [(code: UInt16, jt: UInt8, jf: UInt8, k: UInt32)]

    init(_ bytes: [UInt8]) {
        precondition(bytes.count % 8 == 0)
        var decoded: [(code: UInt16, jt: UInt8, jf: UInt8, k: UInt32)] = []
        for i in stride(from: 0, to: bytes.count, by: 8) {
            let code = UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8
            var k: UInt32 = 0
            for j in (4..<8).reversed() { k = k << 8 | UInt32(bytes[i + j]) }
            decoded.append((code, bytes[i + 2], bytes[i + 3], k))
        }
        program = decoded
    }

    /// The 32-bit word at `offset` of `struct seccomp_data` (little-endian x86_64 layout).
    static func word(_ call: Call, _ offset: UInt32) -> UInt32? {
        switch offset {
        case 0: return call.nr
        case 4: return call.arch
        case 8, 12: return 0  // instruction pointer
        case 16..<64 where offset % 4 == 0:
            let arg = call.args[Int(offset - 16) / 8]
            return offset % 8 == 0 ? UInt32(truncatingIfNeeded: arg) : UInt32(truncatingIfNeeded: arg >> 32)
        default: return nil
        }
    }

    /// Runs the program; returns the seccomp return value, or nil for anything malformed
    /// (unknown opcode, jump out of range, bad load).
    func run(_ call: Call) -> UInt32? {
        var a: UInt32 = 0, x: UInt32 = 0
        var memory = [UInt32](repeating: 0, count: 16)
        var pc = 0
        while pc < program.count {
            let (code, jt, jf, k) = program[pc]
            pc += 1
            func branch(_ taken: Bool) { pc += Int(taken ? jt : jf) }
            switch code {
            case 0x20: guard let w = Self.word(call, k) else { return nil }; a = w
            case 0x00: a = k
            case 0x01: x = k
            case 0x60: guard k < 16 else { return nil }; a = memory[Int(k)]
            case 0x61: guard k < 16 else { return nil }; x = memory[Int(k)]
            case 0x02: guard k < 16 else { return nil }; memory[Int(k)] = a
            case 0x03: guard k < 16 else { return nil }; memory[Int(k)] = x
            case 0x54: a &= k
            case 0x5c: a &= x
            case 0x44: a |= k
            case 0x07: x = a
            case 0x87: a = x
            case 0x05: pc += Int(k)
            case 0x15: branch(a == k)
            case 0x25: branch(a > k)
            case 0x35: branch(a >= k)
            case 0x45: branch(a & k != 0)
            case 0x1d: branch(a == x)
            case 0x2d: branch(a > x)
            case 0x3d: branch(a >= x)
            case 0x4d: branch(a & x != 0)
            case 0x06: return k
            case 0x16: return a
            default: return nil
            }
        }
        return nil  // fell off the end
    }
}
