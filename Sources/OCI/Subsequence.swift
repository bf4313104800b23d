// brig's modules are built without the implicit `_StringProcessing` import (Package.swift), so
// the standard library's substring search (`"a..b".contains("..")`, which that module provides)
// is this one.

extension Collection where Element: Equatable {
    /// Whether `needle` occurs in this collection as a contiguous run (an empty needle always
    /// does). A naive search: brig's haystacks are paths and option strings.
    public func contains(subsequence needle: some Collection<Element>) -> Bool {
        guard let first = needle.first else { return true }
        var start = startIndex
        while let i = self[start...].firstIndex(of: first) {
            if self[i...].starts(with: needle) { return true }
            start = index(after: i)
        }
        return false
    }
}
