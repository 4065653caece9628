import HTTPCore
import Glibc

/// The headers of one `multipart/form-data` part.
public struct MultipartPartHeaders {
    public var fields: [(name: String, value: String)] = []
    /// Where the part's content starts in the request body.
    public var bodyOffset: Int64 = 0

    public subscript(name: String) -> String? {
        let lower = name.lowercased()
        return fields.first { $0.name.lowercased() == lower }?.value
    }

    /// The `name` parameter of `Content-Disposition`.
    public var name: String? { dispositionParameters["name"] }

    /// The file name as sent: `filename*` (RFC 5987) wins over `filename`.
    /// Raw and unsafe: pass it through ``DisplayName`` before storing or showing it.
    public var fileName: String? {
        let parameters = dispositionParameters
        if let extended = parameters["filename*"], let decoded = Self.decodeExtendedValue(extended) { return decoded }
        return parameters["filename"]
    }

    var dispositionParameters: [String: String] {
        guard let disposition = self["Content-Disposition"] else { return [:] }
        return HeaderParameters.parse(disposition)
    }

    /// `UTF-8''%e2%82%ac.txt` → `€.txt`.
    static func decodeExtendedValue(_ value: String) -> String? {
        let parts = value.splitASCII("'", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].lowercased() == "utf-8" else { return nil }
        return FormURLEncoded.decode(parts[2].replacingOccurrences(of: "+", with: "%2B"))
    }
}

/// Receives the parts of a multipart body as they stream past.
public protocol MultipartFormHandler: AnyObject {
    func beginPart(_ headers: MultipartPartHeaders) throws
    func partBody(_ bytes: UnsafeRawBufferPointer) throws
    func endPart() throws
}

/// Why a multipart body was refused.
public struct MultipartError: HTTPError, CustomStringConvertible {
    public let status: HTTPStatus = .badRequest
    public let publicMessage: String
    public var description: String { publicMessage }
    init(_ message: String) { publicMessage = message }
}

/// Streams a `multipart/form-data` body into a ``MultipartFormHandler``
/// through one fixed buffer: a file of any size passes without being held in memory.
///
/// Written here rather than taken from vapor/multipart-kit (4.7.1) because that
/// parser turns a header value that isn't UTF-8 into an empty string, which
/// loses the part's `name` along with a hostile file name, and it calls back
/// once per run of bytes between CRs, allocating each time (about every 256
/// bytes of binary data). This one finds delimiters with `memchr` and hands
/// over the largest safe slice of each buffer.
///
/// A body that ends without the closing boundary is refused, so a truncated
/// upload is never taken for a complete one.
public enum MultipartFormStream {
    static let maxHeaderBlock = 16 * 1024

    /// Bounds on a body's structure, whatever its size: parts and their
    /// header bytes (values are bounded by the handler).
    public struct Limits: Sendable {
        public var maxParts: Int
        /// All parts' header blocks together.
        public var maxHeaderBytes: Int

        public init(maxParts: Int = 64, maxHeaderBytes: Int = 64 * 1024) {
            self.maxParts = maxParts
            self.maxHeaderBytes = maxHeaderBytes
        }
    }

    /// The `boundary` parameter of a `multipart/form-data` content type.
    public static func boundary(fromContentType contentType: String?) -> String? {
        guard let contentType else { return nil }
        guard MediaType(contentType)?.essence == "multipart/form-data" else { return nil }
        guard let boundary = HeaderParameters.parse(contentType)["boundary"],
              (1...200).contains(boundary.utf8.count) else { return nil }
        return boundary
    }

    public static func parse(_ body: RequestBody, boundary: String, handler: MultipartFormHandler,
                             limits: Limits = Limits(), bufferSize: Int = 256 * 1024) throws {
        var parts = 0
        var headerBytes = 0
        let scanner = ByteScanner(body: body, capacity: max(bufferSize, 4 * maxHeaderBlock))
        defer { scanner.release() }
        // Every delimiter is CRLF "--" boundary; a virtual CRLF before the body
        // lets the first one (which has none) match the same way.
        let delimiter = Array("\r\n--\(boundary)".utf8)
        scanner.prime(with: [13, 10])
        var state = State.preamble
        while true {
            switch state {
            case .preamble:
                if let position = scanner.find(delimiter) {
                    scanner.consume(upTo: position + delimiter.count)
                    state = .afterDelimiter
                } else {
                    scanner.consume(upTo: max(scanner.start, scanner.end - delimiter.count + 1))
                    guard try scanner.fill() else { throw MultipartError("Multipart body has no boundary") }
                }
            case .afterDelimiter:
                guard try scanner.ensure(2) else { throw ended }
                if scanner.byte(at: 0) == 45 && scanner.byte(at: 1) == 45 {  // "--": the closing delimiter
                    try body.drain()
                    return
                }
                while true {  // optional transport padding, then CRLF
                    guard try scanner.ensure(1) else { throw ended }
                    let byte = scanner.byte(at: 0)
                    if byte == 32 || byte == 9 { scanner.consume(upTo: scanner.start + 1); continue }
                    break
                }
                guard try scanner.ensure(2) else { throw ended }
                guard scanner.byte(at: 0) == 13 && scanner.byte(at: 1) == 10 else {
                    throw MultipartError("Malformed multipart body")
                }
                scanner.consume(upTo: scanner.start + 2)
                state = .headers
            case .headers:
                guard try scanner.ensure(2) else { throw ended }
                parts += 1
                guard parts <= limits.maxParts else { throw MultipartError("Too many parts in multipart body") }
                var headers = MultipartPartHeaders()
                if scanner.byte(at: 0) == 13 && scanner.byte(at: 1) == 10 {
                    scanner.consume(upTo: scanner.start + 2)  // a part with no headers
                } else if let position = scanner.find([13, 10, 13, 10]) {
                    guard position - scanner.start <= maxHeaderBlock else { throw MultipartError("Part headers too large") }
                    headerBytes += position - scanner.start
                    guard headerBytes <= limits.maxHeaderBytes else { throw MultipartError("Part headers too large") }
                    headers = try parseHeaderBlock(scanner.bytes(scanner.start..<position))
                    scanner.consume(upTo: position + 4)
                } else {
                    guard scanner.end - scanner.start <= maxHeaderBlock else { throw MultipartError("Part headers too large") }
                    guard try scanner.fill() else { throw ended }
                    parts -= 1  // the same part again, with more bytes
                    continue
                }
                headers.bodyOffset = scanner.bodyOffset
                try handler.beginPart(headers)
                state = .body
            case .body:
                if let position = scanner.find(delimiter) {
                    try handler.partBody(scanner.slice(scanner.start..<position))
                    try handler.endPart()
                    scanner.consume(upTo: position + delimiter.count)
                    state = .afterDelimiter
                } else {
                    // Hold back what could be the start of a delimiter split across reads.
                    let safeEnd = scanner.end - delimiter.count + 1
                    if safeEnd > scanner.start {
                        try handler.partBody(scanner.slice(scanner.start..<safeEnd))
                        scanner.consume(upTo: safeEnd)
                    }
                    guard try scanner.fill() else { throw ended }
                }
            }
        }
    }

    private enum State { case preamble, afterDelimiter, headers, body }

    private static var ended: MultipartError { MultipartError("Multipart body ended before its closing boundary") }

    /// Header lines as bytes; values that aren't UTF-8 keep their valid parts
    /// (the rest becomes U+FFFD) so the part's `name` survives a hostile file name.
    static func parseHeaderBlock(_ bytes: [UInt8]) throws -> MultipartPartHeaders {
        var headers = MultipartPartHeaders()
        var lineStart = 0
        var index = 0
        func take(_ line: ArraySlice<UInt8>) throws {
            guard !line.isEmpty else { return }
            guard let colon = line.firstIndex(of: 58), colon > line.startIndex else {
                throw MultipartError("Malformed part header")
            }
            let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self).trimmingWhitespace()
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingWhitespace()
            headers.fields.append((name: name, value: value))
        }
        while index + 1 < bytes.count {
            if bytes[index] == 13 && bytes[index + 1] == 10 {
                try take(bytes[lineStart..<index])
                index += 2
                lineStart = index
            } else {
                index += 1
            }
        }
        try take(bytes[lineStart..<bytes.count])
        return headers
    }
}

/// A window over the request body: bytes in `start..<end` are unread.
final class ByteScanner {
    private let body: RequestBody
    private let storage: UnsafeMutableRawBufferPointer
    private(set) var start = 0
    private(set) var end = 0
    /// Bytes put in the buffer so far, from the body or primed.
    private var loaded: Int64 = 0
    private var primed: Int64 = 0

    /// The body offset of the first unread byte.
    var bodyOffset: Int64 { loaded - Int64(end - start) - primed }

    init(body: RequestBody, capacity: Int) {
        self.body = body
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
    }

    func release() { storage.deallocate() }

    func prime(with bytes: [UInt8]) {
        storage.copyBytes(from: bytes)
        end = bytes.count
        primed = Int64(bytes.count)
        loaded = primed
    }

    func byte(at offset: Int) -> UInt8 { storage[start + offset] }

    func consume(upTo position: Int) { start = position }

    func bytes(_ range: Range<Int>) -> [UInt8] { Array(storage[range]) }

    func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: storage[range]) }

    /// The position of `needle` in the unread bytes, or nil. `memchr` finds
    /// candidates for the first byte, `memcmp` checks the rest (glibc's
    /// `memmem` needs _GNU_SOURCE, which the Glibc module doesn't define).
    func find(_ needle: [UInt8]) -> Int? {
        let base = storage.baseAddress!
        var position = start
        let last = end - needle.count
        guard position <= last else { return nil }
        return needle.withUnsafeBytes { pattern -> Int? in
            while position <= last {
                guard let hit = memchr(base + position, Int32(needle[0]), last - position + 1) else { return nil }
                let offset = UnsafeRawPointer(base).distance(to: UnsafeRawPointer(hit))
                if memcmp(base + offset, pattern.baseAddress!, needle.count) == 0 { return offset }
                position = offset + 1
            }
            return nil
        }
    }

    /// Makes at least `count` unread bytes available; false if the body ends first.
    func ensure(_ count: Int) throws -> Bool {
        while end - start < count {
            guard try fill() else { return false }
        }
        return true
    }

    /// Moves unread bytes to the front and reads more; false at the end of the body.
    func fill() throws -> Bool {
        if start > 0 {
            if end > start { memmove(storage.baseAddress!, storage.baseAddress! + start, end - start) }
            end -= start
            start = 0
        }
        guard end < storage.count else { return true }
        let count = try body.read(into: UnsafeMutableRawBufferPointer(rebasing: storage[end...]))
        end += count
        loaded += Int64(count)
        return count > 0
    }
}

/// `form-data; name="file"; filename="a b.txt"` → `["name": "file", "filename": "a b.txt"]`.
/// Parameter names are lower-cased; quoted values may contain `;` and escaped quotes.
enum HeaderParameters {
    static func parse(_ header: String) -> [String: String] {
        var result: [String: String] = [:]
        let chars = Array(header.unicodeScalars)
        var index = chars.firstIndex(of: ";").map { $0 + 1 } ?? chars.count
        while index < chars.count {
            while index < chars.count, chars[index] == " " || chars[index] == "\t" || chars[index] == ";" { index += 1 }
            var name = ""
            while index < chars.count, chars[index] != "=", chars[index] != ";" { name.unicodeScalars.append(chars[index]); index += 1 }
            name = name.trimmingWhitespace().lowercased()
            guard index < chars.count, chars[index] == "=" else { continue }
            index += 1
            var value = ""
            if index < chars.count, chars[index] == "\"" {
                index += 1
                while index < chars.count, chars[index] != "\"" {
                    if chars[index] == "\\", index + 1 < chars.count { index += 1 }
                    value.unicodeScalars.append(chars[index])
                    index += 1
                }
                index += 1
            } else {
                while index < chars.count, chars[index] != ";" { value.unicodeScalars.append(chars[index]); index += 1 }
                value = value.trimmingWhitespace()
            }
            if !name.isEmpty, result[name] == nil { result[name] = value }
        }
        return result
    }
}
