import BrigDevices
import BrigKVM

/// Why the VM stopped.
public enum StopReason: Equatable, Sendable, CustomStringConvertible {
    /// The guest wrote N to brig's exit port (0xF4).
    case powerOff(status: UInt8)
    /// The guest asked for a reset (i8042 0xFE, `reboot=k`) or KVM reported a reset/shutdown event.
    case reset
    /// A vCPU executed HLT with interrupts off and no in-kernel irqchip could wake it.
    case halted
    /// Triple fault (KVM_EXIT_SHUTDOWN).
    case tripleFault
    case entryFailure(reason: UInt64)
    case internalError(suberror: UInt32, data: [UInt64] = [])
    case guestCrash
    case unknownExit(reason: UInt32)
    case timeout(seconds: Double)
    case vmmError(String)

    /// brig's exit status: the guest's own status for exit-port power-off, 0 for an orderly
    /// reset/shutdown, 124 on timeout, 125 for VMM errors, 126 when the guest crashed.
    public var exitStatus: Int32 {
        switch self {
        case let .powerOff(s): return Int32(s)
        case .reset, .halted: return 0
        case .timeout: return 124
        case .vmmError: return 125
        case .tripleFault, .entryFailure, .internalError, .guestCrash, .unknownExit: return 126
        }
    }

    public var description: String {
        switch self {
        case let .powerOff(s): return "guest powered off with status \(s)"
        case .reset: return "guest requested reset/shutdown"
        case .halted: return "guest halted"
        case .tripleFault: return "guest triple-faulted (KVM_EXIT_SHUTDOWN)"
        case let .entryFailure(r): return "VM entry failed, hardware reason 0x\(String(r, radix: 16))"
        case let .internalError(s, data):
            let why = s == 1 ? " (emulation failure: the host KVM could not emulate a guest instruction)" : ""
            let extra = data.isEmpty ? "" : ", data [" + data.map { "0x" + String($0, radix: 16) }.joined(separator: " ") + "]"
            return "KVM internal error, suberror \(s)\(why)\(extra)"
        case .guestCrash: return "guest reported a crash (KVM_SYSTEM_EVENT_CRASH)"
        case let .unknownExit(r): return "unhandled KVM exit reason \(r)"
        case let .timeout(s): return "guest did not stop within \(s) s"
        case let .vmmError(m): return "VMM error: \(m)"
        }
    }
}

/// What the vCPU loop does with one exit.
public enum ExitAction: Equatable, Sendable {
    case pioRead(port: UInt16, size: Int, count: Int)
    case pioWrite(port: UInt16, size: Int, data: [UInt8])
    case mmioRead(address: UInt64, size: Int)
    case mmioWrite(address: UInt64, data: [UInt8])
    case resume
    case stop(StopReason)
}

/// Pure exit routing: decides what to do with a KVM exit, without touching devices or KVM.
public func route(_ exit: VcpuExit) -> ExitAction {
    switch exit {
    case let .ioIn(port, size, count): return .pioRead(port: port, size: size, count: count)
    case let .ioOut(port, size, data): return .pioWrite(port: port, size: size, data: data)
    case let .mmioRead(a, size): return .mmioRead(address: a, size: size)
    case let .mmioWrite(a, data): return .mmioWrite(address: a, data: data)
    case .interrupted: return .resume
    case .hlt: return .stop(.halted)
    case .shutdown: return .stop(.tripleFault)
    case let .failEntry(r): return .stop(.entryFailure(reason: r))
    case let .internalError(s, data): return .stop(.internalError(suberror: s, data: data))
    case let .systemEvent(t):
        return .stop(t == VcpuExit.systemEventCrash ? .guestCrash : .reset)
    case let .unknown(r): return .stop(.unknownExit(reason: r))
    }
}

/// Routing of a device's side effect after a write.
public func route(_ effect: DeviceEffect) -> ExitAction {
    switch effect {
    case .none: return .resume
    case .reset: return .stop(.reset)
    case let .powerOff(s): return .stop(.powerOff(status: s))
    }
}
