import BrigJSON
import BrigLinux
import Glibc
import Testing

/// Outcomes recorded from an earlier build, to hold a decoder to what that build did: each case
/// is a JSON document, its outcome one line (`<label> => <outcome>`) of a file next to this one.
/// `BRIG_GOLDEN_RECORD=1 swift test --filter <suite>` rewrites the file instead of comparing.
///
/// config-golden.txt and state-golden.txt were recorded with the synthesized Codable decoders
/// (commit 64747cc), before the hand-written readers replaced them.
enum Golden {
    static func check(_ name: String, _ outcomes: [(label: String, outcome: String)],
                      sourceLocation: SourceLocation = #_sourceLocation) throws {
        let file = String(#filePath.dropLast("Golden.swift".count)) + name
        let lines = outcomes.map { "\($0.label) => \($0.outcome)" }
        if getenv("BRIG_GOLDEN_RECORD") != nil {
            try Files.write(file, lines.joined(separator: "\n") + "\n", flags: O_WRONLY | O_CREAT | O_TRUNC)
            return
        }
        let recorded = try Files.readString(file).split(separator: "\n").map(String.init)
        #expect(recorded.count == lines.count, "\(name): \(recorded.count) recorded cases, \(lines.count) now", sourceLocation: sourceLocation)
        var differing = 0
        for (was, now) in zip(recorded, lines) where was != now {
            differing += 1
            if differing <= 20 { Issue.record("\(name):\n  recorded: \(was)\n  now:      \(now)", sourceLocation: sourceLocation) }
        }
        #expect(differing == 0, "\(name): \(differing) of \(lines.count) outcomes differ", sourceLocation: sourceLocation)
    }

    /// FNV-1a of the bytes: a decoded value's fingerprint (its JSON with sorted keys).
    static func hash(_ bytes: [UInt8]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// Every way a document is broken or stretched, one node at a time: each member and element is
/// replaced by null and by values of the wrong kind (numbers that do not fit, fractions, 1e3),
/// each member removed, each object and array given extra, duplicate and numeric-named members
/// or extra elements, and each object's members all made wrong or removed at once.
enum Mutations {
    enum Step { case key(String), index(Int) }

    static func label(_ path: [Step]) -> String {
        var out = ""
        for step in path {
            switch step {
            case .key(let k): out += (out.isEmpty ? "" : ".") + k
            case .index(let i): out += "[\(i)]"
            }
        }
        return out.isEmpty ? "<root>" : out
    }

    static func all(of document: JSONValue) -> [(label: String, json: JSONValue)] {
        var out: [(String, JSONValue)] = [("<root> as is", document)]
        walk(document, []) { path, node in
            let at = label(path)
            func put(_ op: String, _ v: JSONValue?) { out.append(("\(at) \(op)", replacing(path, in: document, with: v))) }
            if !path.isEmpty {
                put("= null", .null)
                if case .key = path.last! { put("removed", nil) }
            }
            switch node {
            case .string:
                put("= 7", .number("7"))
                put("= \"\"", .string(""))
                put("= []", .array([]))
            case .number(let n):
                for v in ["1.5", "-1", "4294967296", "18446744073709551616", "1e3"] { put("= \(v)", .number(v)) }
                if n.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) { put("= \(n).0", .number(n + ".0")) }
                put("= \"7\"", .string("7"))
                put("= true", .bool(true))
            case .bool:
                put("= 1", .number("1"))
                put("= \"true\"", .string("true"))
            case .array(let elements):
                put("= {}", .object([]))
                put("= \"x\"", .string("x"))
                put("+ null", .array(elements + [.null]))
                put("+ \"x\"", .array(elements + [.string("x")]))
                put("+ 7", .array(elements + [.number("7")]))
            case .object(let members):
                put("= []", .array([]))
                put("= \"x\"", .string("x"))
                put("+ x-extra", .object(members + [("x-extra", .object([("a", .array([.number("1"), .null]))]))]))
                put("+ \"7\": 1", .object(members + [("7", .number("1"))]))
                put("+ \"7\": {}", .object(members + [("7", .object([]))]))
                // Several faults at once: the first reported shows the order fields are read in.
                put("all members = true", .object(members.map { ($0.key, .bool(true)) }))
                put("all members = \"x\"", .object(members.map { ($0.key, .string("x")) }))
                put("all members = {}", .object(members.map { ($0.key, .object([])) }))
                put("emptied", .object([]))
                if let first = members.first {
                    put("+ duplicate \(first.key) = null", .object(members + [(first.key, .null)]))
                    put("+ duplicate \(first.key) first", .object([(first.key, .string("dup"))] + members))
                }
            case .null: break
            }
        }
        return out
    }

    static func walk(_ node: JSONValue, _ path: [Step], _ visit: ([Step], JSONValue) -> Void) {
        visit(path, node)
        switch node {
        case .object(let members): for m in members { walk(m.value, path + [.key(m.key)], visit) }
        case .array(let elements): for (i, e) in elements.enumerated() { walk(e, path + [.index(i)], visit) }
        default: break
        }
    }

    /// `document` with the node at `path` replaced (removed when `value` is nil).
    static func replacing(_ path: [Step], in document: JSONValue, with value: JSONValue?) -> JSONValue {
        guard let step = path.first else { return value ?? .null }
        let rest = Array(path.dropFirst())
        switch (document, step) {
        case (.object(var members), .key(let k)):
            guard let i = members.firstIndex(where: { $0.key == k }) else { return document }
            if rest.isEmpty, value == nil { members.remove(at: i) } else {
                members[i].value = replacing(rest, in: members[i].value, with: value)
            }
            return .object(members)
        case (.array(var elements), .index(let i)):
            elements[i] = replacing(rest, in: elements[i], with: value ?? .null)
            return .array(elements)
        default: return document
        }
    }
}
