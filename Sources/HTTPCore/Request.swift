/// One HTTP request as nginx handed it over, independent of FastCGI, so that
/// every route can be exercised in-process.
public struct Request {
    /// Upper-case method; `HEAD` is kept as sent (the router serves it as `GET`).
    public var method: String
    /// The decoded path without the query string, as nginx normalised it.
    public var path: String
    /// The raw query string, without `?`.
    public var queryString: String
    public var headers: HTTPHeaders
    /// The address of the client nginx talked to.
    public var remoteAddress: String
    /// `https` when nginx terminated TLS for this request.
    public var scheme: String
    /// True when the request came through the content origin's server block
    /// (nginx sets `MINIHOST_CONTENT_ORIGIN`; no client header can).
    public var isContentOrigin: Bool
    public var body: RequestBody
    /// True once the client is gone (nginx closed its connection to the
    /// worker), so expensive work for nobody can be skipped. Always false in
    /// tests and wherever it can't be known.
    public var isAbandoned: @Sendable () -> Bool = { false }
    /// nginx's `$request_id` for this request (32 hex digits): in every log
    /// line about it and in its `X-Request-Id` answer header. Empty in tests.
    public var requestId: String = ""

    public init(method: String, path: String, queryString: String = "", headers: HTTPHeaders = HTTPHeaders(),
                remoteAddress: String = "127.0.0.1", scheme: String = "http", isContentOrigin: Bool = false,
                body: RequestBody = BufferedRequestBody()) {
        self.method = method.uppercased()
        self.path = path
        self.queryString = queryString
        self.headers = headers
        self.remoteAddress = remoteAddress
        self.scheme = scheme
        self.isContentOrigin = isContentOrigin
        self.body = body
    }

    /// Query parameters; the first value wins when a name repeats.
    public var query: [String: String] { FormURLEncoded.parse(queryString) }

    public var contentType: String? { headers["Content-Type"] }

    /// The declared body length; nil when the body is chunked or absent.
    public var contentLength: Int? { headers["Content-Length"].flatMap { Int($0) } }

    /// `Host` as the client sent it (may include a port).
    public var host: String? { headers["Host"] }

    /// The value of the first cookie called `name` in the `Cookie` header,
    /// spaces and tabs around it trimmed; nil when there is none.
    public func cookie(_ name: String) -> Substring? {
        guard let header = headers["Cookie"] else { return nil }
        for pair in header.splitASCII(";") {
            let parts = pair.splitASCII("=", maxSplits: 1)
            if parts.count == 2, Self.trimmingBlanks(parts[0]) == name { return Self.trimmingBlanks(parts[1]) }
        }
        return nil
    }

    private static func trimmingBlanks(_ text: Substring) -> Substring {
        let isBlank = { (scalar: Unicode.Scalar) in scalar == " " || scalar == "\t" }
        guard let first = text.unicodeScalars.firstIndex(where: { !isBlank($0) }),
              let last = text.unicodeScalars.lastIndex(where: { !isBlank($0) }) else { return "" }
        return text[first...last]
    }
}

/// `application/x-www-form-urlencoded` decoding, for query strings and form bodies.
public enum FormURLEncoded {
    public static func parse(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for pair in text.splitASCII("&") {
            let parts = pair.splitASCII("=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = decode(parts[0])
            guard !name.isEmpty, result[name] == nil else { continue }
            result[name] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return result
    }

    /// Percent-decodes and turns `+` into a space; invalid escapes are kept
    /// literally and invalid UTF-8 becomes U+FFFD.
    public static func decode<S: StringProtocol>(_ text: S) -> String {
        var bytes: [UInt8] = []
        let utf8 = Array(text.utf8)
        var index = 0
        while index < utf8.count {
            let byte = utf8[index]
            if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), index + 2 < utf8.count,
                      let high = hexValue(utf8[index + 1]), let low = hexValue(utf8[index + 2]) {
                bytes.append(high << 4 | low)
                index += 2
            } else {
                bytes.append(byte)
            }
            index += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Percent-encodes everything but RFC 3986 unreserved characters.
    public static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out.unicodeScalars.append("%")
                out.unicodeScalars.append(digits[Int(byte >> 4)])
                out.unicodeScalars.append(digits[Int(byte & 0xf)])
            }
        }
        return out
    }

    private static let digits = Array("0123456789ABCDEF".unicodeScalars)

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 48...57: return byte - 48
        case 65...70: return byte - 55
        case 97...102: return byte - 87
        default: return nil
        }
    }
}
