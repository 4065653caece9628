/// A content type parsed whole (RFC 9110 §8.3.1): `type/subtype` and its
/// parameters, each a token or a quoted string. Anything else is not a media
/// type at all: a value such as `image/png;x=,text/html` is refused rather
/// than read as `image/png`, so no check can be fooled by what follows the
/// first `;`.
public struct MediaType: Equatable, Sendable, CustomStringConvertible {
    /// Lower-cased, like `subtype`: media types compare case-insensitively.
    public let type: String
    public let subtype: String
    /// Names lower-cased, values as sent (unquoted).
    public let parameters: [Parameter]

    public struct Parameter: Equatable, Sendable {
        public let name: String
        public let value: String
    }

    /// The longest content type kept; longer ones are not worth parsing.
    static let maxLength = 255
    static let maxParameters = 8

    /// `type/subtype`, lower-cased.
    public var essence: String { type + "/" + subtype }

    /// The normalized form: lower-case essence, `; name=value` parameters,
    /// values quoted where they aren't tokens.
    public var description: String {
        var text = essence
        for parameter in parameters {
            text += "; " + parameter.name + "="
            if !parameter.value.isEmpty && parameter.value.utf8.allSatisfy(Self.isTokenByte) {
                text += parameter.value
            } else {
                text += "\"" + parameter.value.replacingAll(["\\": "\\\\", "\"": "\\\""]) + "\""
            }
        }
        return text
    }

    /// nil unless `text` is exactly one valid media type, in printable ASCII.
    public init?(_ text: String) {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= Self.maxLength else { return nil }
        var index = 0
        func skipWhitespace() { while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x09 { index += 1 } }
        func token() -> String? {
            let start = index
            while index < bytes.count, Self.isTokenByte(bytes[index]) { index += 1 }
            return index > start ? String(decoding: bytes[start..<index], as: UTF8.self) : nil
        }
        skipWhitespace()
        guard let type = token(), index < bytes.count, bytes[index] == UInt8(ascii: "/") else { return nil }
        index += 1
        guard let subtype = token() else { return nil }
        var parameters: [Parameter] = []
        while true {
            skipWhitespace()
            if index == bytes.count { break }
            guard bytes[index] == UInt8(ascii: ";") else { return nil }
            index += 1
            skipWhitespace()
            // RFC 9110 allows empty parameters (`;;`) and a trailing `;`.
            if index == bytes.count || bytes[index] == UInt8(ascii: ";") { continue }
            guard let name = token(), index < bytes.count, bytes[index] == UInt8(ascii: "=") else { return nil }
            index += 1
            let value: String
            if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                index += 1
                var unquoted: [UInt8] = []
                var closed = false
                while index < bytes.count {
                    let byte = bytes[index]
                    if byte == UInt8(ascii: "\"") { closed = true; index += 1; break }
                    if byte == UInt8(ascii: "\\") {
                        guard index + 1 < bytes.count, Self.isQuotedTextByte(bytes[index + 1]) else { return nil }
                        unquoted.append(bytes[index + 1])
                        index += 2
                        continue
                    }
                    guard Self.isQuotedTextByte(byte) else { return nil }
                    unquoted.append(byte)
                    index += 1
                }
                guard closed else { return nil }
                value = String(decoding: unquoted, as: UTF8.self)
            } else {
                guard let text = token() else { return nil }
                value = text
            }
            parameters.append(Parameter(name: name.asciiLowercased(), value: value))
            guard parameters.count <= Self.maxParameters else { return nil }
        }
        self.type = type.asciiLowercased()
        self.subtype = subtype.asciiLowercased()
        self.parameters = parameters
    }

    public func parameter(_ name: String) -> String? {
        let lower = name.asciiLowercased()
        return parameters.first { $0.name == lower }?.value
    }

    /// tchar: `!#$%&'*+-.^_\`|~`, digits and letters.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// Printable ASCII and space. RFC 9110 also allows tabs and bytes past
    /// 0x7F in a quoted string; a stored type never holds them.
    static func isQuotedTextByte(_ byte: UInt8) -> Bool {
        byte >= 0x20 && byte < 0x7F
    }

    public static let octetStream = "application/octet-stream"

    /// A content type as recorded for an upload: the normalized form of a
    /// valid media type, else `application/octet-stream`.
    public static func sanitize(_ raw: String?) -> String {
        // The normalized form can be longer than what was sent (a space after
        // each `;`, quotes): past the limit it wouldn't parse again.
        guard let raw, let parsed = MediaType(raw), parsed.description.utf8.count <= maxLength else { return octetStream }
        return parsed.description
    }
}

extension String {
    /// Lower-cases ASCII letters only (media types and header names are ASCII).
    func asciiLowercased() -> String {
        String(decoding: utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
    }

    func replacingAll(_ replacements: [Character: String]) -> String {
        var out = ""
        for character in self { out += replacements[character] ?? String(character) }
        return out
    }
}
