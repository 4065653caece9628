import Foundation
import HTTPCore
import Store

/// A JSON text written byte by byte, for long lists (an s4 listing page).
///
/// Written here rather than taken from Foundation: for a page of 500
/// objects `JSONSerialization` took 25-48 ms and `JSONEncoder` 3-4 ms, most
/// of the request; appending bytes takes a fraction of a millisecond. The
/// caller writes the structure (keys in sorted order, like every other
/// answer); this escapes strings as RFC 8259 requires.
struct JSONBytes {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    /// JSON punctuation or a key already known to need no escaping.
    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        stringContents(value)
        bytes.append(UInt8(ascii: "\""))
    }

    /// A string's escaped characters without the quotes around them.
    mutating func stringContents(_ value: String) {
        // Most strings need no escape: one copy of the whole run, checked
        // on the string's own storage (native strings are contiguous UTF-8).
        let copied = value.utf8.withContiguousStorageIfAvailable { run -> Bool in
            for byte in run where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { return false }
            bytes.append(contentsOf: run)
            return true
        }
        if copied == true { return }
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): raw("\\\"")
            case UInt8(ascii: "\\"): raw("\\\\")
            case 0x0A: raw("\\n")
            case 0x0D: raw("\\r")
            case 0x09: raw("\\t")
            case 0..<0x20:
                raw("\\u00")
                bytes.append(Self.hexDigits[Int(byte >> 4)])
                bytes.append(Self.hexDigits[Int(byte & 0xF)])
            default: bytes.append(byte)
            }
        }
    }

    mutating func number(_ value: Int64) {
        bytes.append(contentsOf: String(value).utf8)
    }

    mutating func bool(_ value: Bool) {
        if value { raw("true") } else { raw("false") }
    }

    mutating func null() { raw("null") }

    /// `"2026-11-23T21:53:51.123Z"` (``ISO8601Timestamp``).
    mutating func timestamp(_ date: Date) {
        bytes.append(UInt8(ascii: "\""))
        ISO8601Timestamp.append(date, to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// The answer: `application/json`, like ``JSONResponse``'s.
    func response(status: HTTPStatus = .ok) -> Response {
        var headers = HTTPHeaders()
        headers.set("Content-Type", "application/json; charset=utf-8")
        return Response(status: status, headers: headers, body: .bytes(bytes))
    }
}
