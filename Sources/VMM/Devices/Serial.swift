#if canImport(Glibc)
import Glibc
#endif

/// A 16550A UART (8 registers at base 0x3F8, IRQ 4). Transmitted bytes go to a file
/// descriptor; received bytes can be queued with `enqueueInput`. Not thread-safe on its own:
/// the Bus serialises accesses.
public final class Serial16550: BusDevice, @unchecked Sendable {
    public static let com1: UInt64 = 0x3F8
    public static let com1IRQ: UInt32 = 4

    // Register offsets.
    public static let DATA: UInt64 = 0, IER: UInt64 = 1, IIR: UInt64 = 2, LCR: UInt64 = 3
    public static let MCR: UInt64 = 4, LSR: UInt64 = 5, MSR: UInt64 = 6, SCR: UInt64 = 7
    // Bits.
    public static let lcrDLAB: UInt8 = 0x80
    public static let ierRDA: UInt8 = 0x01, ierTHRE: UInt8 = 0x02
    public static let iirNone: UInt8 = 0x01, iirTHRE: UInt8 = 0x02, iirRDA: UInt8 = 0x04, iirFIFO: UInt8 = 0xC0
    public static let lsrDR: UInt8 = 0x01, lsrTHRE: UInt8 = 0x20, lsrTEMT: UInt8 = 0x40
    public static let mcrLoop: UInt8 = 0x10

    public private(set) var ier: UInt8 = 0
    public private(set) var lcr: UInt8 = 0x03          // 8N1
    public private(set) var mcr: UInt8 = 0x08          // OUT2
    public private(set) var scratch: UInt8 = 0
    public private(set) var divisor: UInt16 = 12       // 9600 baud
    private var fcr: UInt8 = 0
    private var thrEmptyPending = false
    private var input: [UInt8] = []
    private let outFD: Int32
    private let irq: (any InterruptLine)?
    /// Bytes written by the guest (kept when `record` is set; for tests).
    public private(set) var transmitted: [UInt8] = []
    private let record: Bool
    /// Called once with the first transmitted byte (boot-time measurement).
    public var onFirstByte: (@Sendable () -> Void)?

    public init(outFD: Int32, irq: (any InterruptLine)? = nil, record: Bool = false) {
        self.outFD = outFD; self.irq = irq; self.record = record
    }

    public func enqueueInput(_ bytes: [UInt8]) {
        input += bytes
        if ier & Self.ierRDA != 0 { irq?.trigger() }
    }

    private var dlab: Bool { lcr & Self.lcrDLAB != 0 }
    private var loopback: Bool { mcr & Self.mcrLoop != 0 }

    /// Interrupt identification, highest priority first.
    var iir: UInt8 {
        let fifo = fcr & 1 != 0 ? Self.iirFIFO : 0
        if ier & Self.ierRDA != 0, !input.isEmpty { return Self.iirRDA | fifo }
        if ier & Self.ierTHRE != 0, thrEmptyPending { return Self.iirTHRE | fifo }
        return Self.iirNone | fifo
    }

    public func readRegister(_ offset: UInt64) -> UInt8 {
        switch offset {
        case Self.DATA:
            if dlab { return UInt8(divisor & 0xFF) }
            return input.isEmpty ? 0 : input.removeFirst()
        case Self.IER: return dlab ? UInt8(divisor >> 8) : ier
        case Self.IIR:
            let v = iir
            if v & 0x0F == Self.iirTHRE { thrEmptyPending = false } // reading IIR clears THRE
            return v
        case Self.LCR: return lcr
        case Self.MCR: return mcr
        case Self.LSR: return Self.lsrTHRE | Self.lsrTEMT | (input.isEmpty ? 0 : Self.lsrDR)
        case Self.MSR:
            if loopback {
                // DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD
                return (mcr & 0x01) << 5 | (mcr & 0x02) << 3 | (mcr & 0x04) << 4 | (mcr & 0x08) << 4
            }
            return 0xB0 // DCD | DSR | CTS
        case Self.SCR: return scratch
        default: return 0
        }
    }

    public func writeRegister(_ offset: UInt64, _ v: UInt8) {
        switch offset {
        case Self.DATA:
            if dlab { divisor = divisor & 0xFF00 | UInt16(v); return }
            if loopback { input.append(v); if ier & Self.ierRDA != 0 { irq?.trigger() }; return }
            transmit(v)
            thrEmptyPending = true
            if ier & Self.ierTHRE != 0 { irq?.trigger() }
        case Self.IER:
            if dlab { divisor = divisor & 0x00FF | UInt16(v) << 8; return }
            let wasOff = ier & Self.ierTHRE == 0
            ier = v & 0x0F
            // Enabling THRE with an empty transmitter raises the interrupt immediately.
            if wasOff, ier & Self.ierTHRE != 0 { thrEmptyPending = true; irq?.trigger() }
        case Self.IIR: fcr = v
        case Self.LCR: lcr = v
        case Self.MCR: mcr = v & 0x1F
        case Self.SCR: scratch = v
        default: break // LSR/MSR are read-only
        }
    }

    private func transmit(_ v: UInt8) {
        if let f = onFirstByte { onFirstByte = nil; f() }
        if record { transmitted.append(v) }
        var b = v
        while outFD >= 0 {
            let n = Glibc.write(outFD, &b, 1)
            if n == 1 || (n < 0 && errno != EINTR) { break }
        }
    }

    public func read(offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        for i in data.indices { data[i] = 0 }
        if !data.isEmpty { data[0] = readRegister(offset) }
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) -> DeviceEffect {
        if let v = data.first { writeRegister(offset, v) }
        return .none
    }
}
