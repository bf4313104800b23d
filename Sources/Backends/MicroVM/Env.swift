import Glibc

enum Env {
    static func get(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
    static func all() -> [String] {
        var out: [String] = []
        var p = environ
        while let e = p.pointee { out.append(String(cString: e)); p += 1 }
        return out
    }
}
