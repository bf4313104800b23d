import BrigAgentProtocol
import BrigCore
import BrigLinux
import Glibc

/// One failed attempt to reach the agent, and whether waiting could cure it.
struct ConnectFailure: Error, Equatable {
    var message: String
    var retryable: Bool
    init(_ message: String, retryable: Bool) { self.message = message; self.retryable = retryable }
}

/// Waits for a guest agent: the agent is ready when it has answered the hello, not after some
/// sleep. An attempt that meets nothing listening yet (no socket, refused, the VMM closing the
/// connection because the guest reset it, no answer in time, the connection dropping during the
/// hello) is retried with exponential backoff until the deadline; any other failure — an agent
/// speaking another protocol version or garbage, an unexpected VMM reply — ends the wait at once,
/// as does `gone` reporting that the guest cannot come up any more (its VM stopped).
struct AgentWaiter {
    /// Seconds from the first attempt until giving up.
    var timeout: Double
    /// One attempt, given how long it may wait for an answer.
    var connect: (Double) throws(ConnectFailure) -> Int32
    /// Why waiting is pointless (the VM stopped), asked after every failed attempt.
    var gone: () -> String? = { nil }
    var now: () -> Double = monotonicSeconds
    var sleep: (Double) -> Void = { usleep(useconds_t(max(0, $0) * 1e6)) }
    /// Backoff: from `firstDelay`, doubling, at most `maxDelay` seconds between attempts.
    var firstDelay = 0.005
    var maxDelay = 0.25
    /// The longest one attempt waits for the VMM's or the agent's answer.
    var attemptTimeout = 3.0
    /// What to say when the deadline passes (how to raise it).
    var hint = ""

    /// Attempts made by the last `session()` (for the monitor's timing file and tests).
    private(set) var attempts = 0

    init(timeout: Double, connect: @escaping (Double) throws(ConnectFailure) -> Int32) {
        self.timeout = timeout; self.connect = connect
    }

    mutating func session() throws(RuntimeError) -> AgentSession {
        let start = now()
        let deadline = start + timeout
        var delay = firstDelay
        attempts = 0
        while true {
            attempts += 1
            // Even a last attempt gets a second: a reply that is on its way is worth taking.
            let budget = max(1, min(attemptTimeout, deadline - now()))
            let failure: ConnectFailure
            do {
                let fd = try connect(budget)
                do { return try AgentSession(fd: fd, helloTimeout: budget) } catch {
                    switch error.code {
                    case .connection: failure = ConnectFailure("the agent's hello: \(error.message)", retryable: true)
                    case .versionMismatch:
                        throw RuntimeError(.system, "the guest agent speaks another protocol version: \(error.message) (brig and the guest's initramfs must come from the same build)")
                    default: throw RuntimeError(.system, "the guest agent's hello: \(error.message)")
                    }
                }
            } catch let f as ConnectFailure { failure = f } catch let e as RuntimeError { throw e } catch {
                throw RuntimeError.wrap(error)
            }
            guard failure.retryable else { throw RuntimeError(.system, failure.message) }
            if let why = gone() { throw RuntimeError(.system, "\(why) before its agent answered (last attempt: \(failure.message))") }
            let left = deadline - now()
            guard left > 0 else {
                throw RuntimeError(.system, "no agent answered within \(AgentEndpoint.seconds(timeout)) (\(attempts) attempts; last: \(failure.message))\(hint)")
            }
            sleep(min(delay, left))
            delay = min(delay * 2, maxDelay)
        }
    }
}
