import BrigAgentProtocol

extension AgentServer {
    /// Accepts connections on an already-listening socket forever (the guest's vsock port).
    public func listen(fd: Int32) throws(AgentError) {
        listenFD = fd
        try loop()
    }
}
