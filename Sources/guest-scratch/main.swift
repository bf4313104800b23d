import BrigAgentGuest
import Glibc
do { try GuestInit.bringUp() } catch { GuestInit.log("bring-up failed: \(error)") }
GuestInit.superviseAgent()
let t = try Transport.fromCmdline()
try t.serve { fd in
    var buf = [UInt8](repeating: 0, count: 64)
    let n = read(fd, &buf, 64)
    _ = write(fd, buf, n)
    GuestInit.log("echoed \(n) bytes")
}
exit(7)
