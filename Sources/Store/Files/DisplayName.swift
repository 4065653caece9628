/// Turns a client-supplied file name into a safe display name. The result is
/// only ever shown and put in `Content-Disposition`; it never becomes a path.
///
/// - keeps only the last path component (`../../etc/passwd` → `passwd`, `C:\x\y.txt` → `y.txt`)
/// - drops control characters (C0, DEL, C1) and Unicode bidi overrides
/// - replaces what isn't valid UTF-8 with U+FFFD (callers decode with replacement)
/// - trims spaces and dots at both ends (`..` alone becomes the fallback)
/// - caps the length at 255 UTF-8 bytes, keeping the extension where it fits
public enum DisplayName {
    public static let fallback = "file"
    public static let maxBytes = 255

    public static func sanitize(_ raw: String?) -> String {
        guard let raw else { return fallback }
        // By scalars: a grapheme cluster can swallow a separator (U+0601 + "/").
        let lastComponent = raw.unicodeScalars.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last
            .map { String(String.UnicodeScalarView($0)) } ?? ""
        var scalars = String.UnicodeScalarView()
        for scalar in lastComponent.unicodeScalars where !isUnsafe(scalar) { scalars.append(scalar) }
        var name = String(scalars)
        while let first = name.unicodeScalars.first, first == " " || first == "." { name.unicodeScalars.removeFirst() }
        while let last = name.unicodeScalars.last, last == " " || last == "." { name.unicodeScalars.removeLast() }
        if name.isEmpty { return fallback }
        return truncate(name)
    }

    private static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: return true            // control characters
        case 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true  // bidi marks and overrides
        case 0xFEFF: return true
        case 0x22, 0x3A, 0x2A, 0x3F, 0x3C, 0x3E, 0x7C: return true  // " : * ? < > | (unsafe when saved on Windows)
        default: return false
        }
    }

    private static func truncate(_ name: String) -> String {
        guard name.utf8.count > maxBytes else { return name }
        var ext = ""
        if let dot = name.lastIndex(of: "."), name.distance(from: dot, to: name.endIndex) <= 16 {
            ext = String(name[dot...])
        }
        var stem = ext.isEmpty ? name : String(name[..<name.lastIndex(of: ".")!])
        while stem.utf8.count + ext.utf8.count > maxBytes { stem.removeLast() }
        return stem + ext
    }
}
