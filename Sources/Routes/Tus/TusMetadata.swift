import Foundation

/// `Upload-Metadata` (tus 1.0.0, creation): comma-separated pairs of a key
/// and an optional base64 value, keys unique, ASCII, without spaces or
/// commas. Kept as sent for `HEAD`; `filename` and `filetype` name the
/// stored upload.
struct TusMetadata {
    private(set) var values: [String: [UInt8]] = [:]
    /// The header as sent.
    let text: String

    /// The longest header kept: more is an attack on memory, not metadata.
    static let maxLength = 4096

    /// nil when `text` isn't valid metadata.
    init?(_ text: String) {
        guard text.utf8.count <= Self.maxLength else { return nil }
        self.text = text
        // An empty header (tuspy sends one when there is no metadata) is no metadata.
        if text.allSatisfy({ $0 == " " || $0 == "\t" }) { return }
        for pair in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: " ", omittingEmptySubsequences: true)
            guard let key = parts.first, parts.count <= 2,
                  key.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7F && $0 != "," }),
                  values[String(key)] == nil else { return nil }
            if parts.count == 2 {
                guard let decoded = Data(base64Encoded: String(parts[1])) else { return nil }
                values[String(key)] = Array(decoded)
            } else {
                values[String(key)] = []
            }
        }
    }

    /// What `HEAD` answers with: the header as sent, nil if it held nothing.
    var storedText: String? { values.isEmpty ? nil : text }

    /// A value as UTF-8 text, if it is.
    func string(_ key: String) -> String? {
        values[key].flatMap { String(validating: $0, as: UTF8.self) }
    }
}

/// RFC 9110's IMF-fixdate (`Upload-Expires`), via `gmtime_r`: thread-safe.
enum HTTPDate {
    static func format(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
