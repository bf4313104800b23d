import BrigOCI
import Testing

/// `contains(subsequence:)`: the substring search brig's modules use in place of
/// `_StringProcessing`'s (Package.swift builds them without that module).
@Suite struct SubsequenceTests {
    @Test func findsContiguousRunsOnly() {
        #expect("/a/../b".contains(subsequence: ".."))
        #expect("a..".contains(subsequence: ".."))
        #expect("..".contains(subsequence: ".."))
        #expect(!"a.b.c".contains(subsequence: ".."))
        #expect(!"".contains(subsequence: ".."))
        #expect(!".".contains(subsequence: ".."))
        #expect("aab".contains(subsequence: "ab"))  // a failed partial match restarts one later
        #expect("DefaultDependencies property".contains(subsequence: "property"))
        #expect(!"propert".contains(subsequence: "property"))
        #expect("anything".contains(subsequence: ""))
        #expect([1, 2, 1, 2, 3].contains(subsequence: [2, 3]))
        #expect(![1, 2, 1, 3].contains(subsequence: [2, 3]))
    }

    /// Agrees with the standard library's search where that module is imported (tests are).
    @Test func agreesWithStringProcessing() {
        let alphabet: [Character] = ["a", "b", "."]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let hay = String((0..<Int.random(in: 0...8, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
            let needle = String((0..<Int.random(in: 1...3, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
            #expect(hay.contains(subsequence: needle) == hay.contains(needle), "\(hay) / \(needle)")
        }
    }
}
