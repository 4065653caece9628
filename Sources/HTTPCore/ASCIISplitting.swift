/// Splitting text from the wire at ASCII separators by bytes, never by
/// `Character`: a grapheme cluster can swallow the separator (U+0601
/// followed by `/` is one `Character`), so `split(separator: "/")` would
/// see one segment where nginx, a shell or a file system sees two.
extension Substring {
    public func splitASCII(_ separator: Unicode.Scalar, maxSplits: Int = .max,
                           omittingEmptySubsequences: Bool = true) -> [Substring] {
        precondition(separator.isASCII)
        return utf8.split(separator: UInt8(separator.value), maxSplits: maxSplits,
                          omittingEmptySubsequences: omittingEmptySubsequences).map { Substring($0) }
    }

    /// The first position of an ASCII character, by bytes.
    public func firstASCIIIndex(of character: Unicode.Scalar) -> String.Index? {
        precondition(character.isASCII)
        return utf8.firstIndex(of: UInt8(character.value))
    }
}

extension String {
    public func splitASCII(_ separator: Unicode.Scalar, maxSplits: Int = .max,
                           omittingEmptySubsequences: Bool = true) -> [Substring] {
        self[...].splitASCII(separator, maxSplits: maxSplits, omittingEmptySubsequences: omittingEmptySubsequences)
    }

    public func firstASCIIIndex(of character: Unicode.Scalar) -> String.Index? {
        self[...].firstASCIIIndex(of: character)
    }
}
