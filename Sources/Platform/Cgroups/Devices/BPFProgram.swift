/// One eBPF instruction (`struct bpf_insn`).
public struct BPFInstruction: Equatable, Sendable, CustomStringConvertible {
    public var opcode: UInt8
    public var dst: UInt8
    public var src: UInt8
    public var offset: Int16
    public var imm: Int32

    public init(_ opcode: UInt8, dst: UInt8 = 0, src: UInt8 = 0, offset: Int16 = 0, imm: Int32 = 0) {
        self.opcode = opcode; self.dst = dst; self.src = src; self.offset = offset; self.imm = imm
    }

    // Opcodes of the subset the device program uses (linux/bpf.h, linux/bpf_common.h).
    public static let ldxMemW: UInt8 = 0x61   // BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
    public static let and32Imm: UInt8 = 0x54  // BPF_ALU | BPF_AND | BPF_K
    public static let rsh32Imm: UInt8 = 0x74  // BPF_ALU | BPF_RSH | BPF_K
    public static let mov64Reg: UInt8 = 0xbf  // BPF_ALU64 | BPF_MOV | BPF_X
    public static let mov64Imm: UInt8 = 0xb7  // BPF_ALU64 | BPF_MOV | BPF_K
    public static let jneImm: UInt8 = 0x55    // BPF_JMP | BPF_JNE | BPF_K
    public static let jneReg: UInt8 = 0x5d    // BPF_JMP | BPF_JNE | BPF_X
    public static let jeqImm: UInt8 = 0x15    // BPF_JMP | BPF_JEQ | BPF_K
    public static let exit: UInt8 = 0x95      // BPF_JMP | BPF_EXIT

    /// The 8-byte kernel encoding (little-endian).
    public var bytes: [UInt8] {
        let o = UInt16(bitPattern: offset), i = UInt32(bitPattern: imm)
        return [opcode, (src << 4) | (dst & 0x0f), UInt8(o & 0xff), UInt8(o >> 8),
                UInt8(i & 0xff), UInt8((i >> 8) & 0xff), UInt8((i >> 16) & 0xff), UInt8(i >> 24)]
    }

    public var description: String {
        "op=0x\(String(opcode, radix: 16)) dst=r\(dst) src=r\(src) off=\(offset) imm=\(imm)"
    }
}

/// Generates the BPF_PROG_TYPE_CGROUP_DEVICE program for a device rule list (cgroup v2).
///
/// The context is `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
/// with `access_type = access << 16 | type` (type 1 = block, 2 = char; access 1 = mknod,
/// 2 = read, 4 = write). The rules are first reduced by `DeviceEmulator` to a default plus
/// exceptions, so the program has v1 semantics exactly; it returns 1 to allow, 0 to deny.
public enum DeviceProgram {
    public static let typeBlock: Int32 = 1
    public static let typeChar: Int32 = 2

    /// Registers: r2 = type, r3 = access, r4 = major, r5 = minor; r1 scratch after the prologue.
    public static func generate(_ rules: [DeviceRule]) throws -> [BPFInstruction] {
        let emu = try DeviceEmulator(rules)
        typealias I = BPFInstruction
        var prog: [I] = [
            I(I.ldxMemW, dst: 2, src: 1, offset: 0),
            I(I.and32Imm, dst: 2, imm: 0xffff),
            I(I.ldxMemW, dst: 3, src: 1, offset: 0),
            I(I.rsh32Imm, dst: 3, imm: 16),
            I(I.ldxMemW, dst: 4, src: 1, offset: 4),
            I(I.ldxMemW, dst: 5, src: 1, offset: 8),
        ]
        for rule in emu.exceptions {
            // Each block's conditional jumps skip to the next block, so they are emitted with a
            // placeholder offset and patched once the block's length is known.
            var block: [I] = []
            var jumps: [Int] = []
            func skipUnless(_ insn: I) { jumps.append(block.count); block.append(insn) }
            skipUnless(I(I.jneImm, dst: 2, imm: rule.kind == .block ? typeBlock : typeChar))
            if rule.access != .all || emu.defaultAllow {
                block.append(I(I.mov64Reg, dst: 1, src: 3))
                block.append(I(I.and32Imm, dst: 1, imm: Int32(rule.access.rawValue)))
                if emu.defaultAllow {
                    skipUnless(I(I.jeqImm, dst: 1, imm: 0))          // no requested bit is denied
                } else {
                    skipUnless(I(I.jneReg, dst: 1, src: 3))          // not every requested bit allowed
                }
            }
            if let major = rule.major { skipUnless(I(I.jneImm, dst: 4, imm: Int32(truncatingIfNeeded: major))) }
            if let minor = rule.minor { skipUnless(I(I.jneImm, dst: 5, imm: Int32(truncatingIfNeeded: minor))) }
            block.append(I(I.mov64Imm, dst: 0, imm: emu.defaultAllow ? 0 : 1))
            block.append(I(I.exit))
            for j in jumps { block[j].offset = Int16(block.count - j - 1) }
            prog += block
        }
        prog.append(I(I.mov64Imm, dst: 0, imm: emu.defaultAllow ? 1 : 0))
        prog.append(I(I.exit))
        return prog
    }

    /// The program as bytes for BPF_PROG_LOAD.
    public static func encode(_ prog: [BPFInstruction]) -> [UInt8] { prog.flatMap(\.bytes) }
}
