import Glibc

/// Non-blocking and close-on-exec: the flags every descriptor a device's event loop polls needs
/// (wake pipes, host sockets, taps).
func setNonBlockingCloexec(_ fd: Int32) {
    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
}
