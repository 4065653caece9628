import CFastCGI
import HTTPCore

/// Turns libfcgi's parameter array into a ``Request``. Every string is copied
/// into Swift here: libfcgi frees them at `FCGX_Finish_r`.
enum FastCGIRequestDecoder {
    static func decode(_ request: inout FCGX_Request) -> Request {
        var params: [String: String] = [:]
        var headers = HTTPHeaders()
        if var pointer = request.envp {
            while let entry = pointer.pointee {
                let text = String(cString: entry)
                if let equals = text.firstIndex(of: "=") {
                    let name = String(text[..<equals])
                    let value = String(text[text.index(after: equals)...])
                    params[name] = value
                    if let header = headerName(forParam: name) { headers.add(header, value) }
                }
                pointer += 1
            }
        }
        let requestURI = params["REQUEST_URI"] ?? "/"
        let path = params["DOCUMENT_URI"].flatMap { $0.isEmpty ? nil : $0 }
            ?? FormURLEncoded.decode(requestURI.split(separator: "?", maxSplits: 1).first ?? "/")
        let scheme = (params["HTTPS"].map { $0.lowercased() == "on" } ?? false) ? "https" : (params["REQUEST_SCHEME"] ?? "http")
        let body = FastCGIRequestBody(stream: request.in, declaredLength: headers["Content-Length"].flatMap { Int64($0) })
        return Request(method: params["REQUEST_METHOD"] ?? "GET", path: path,
                       queryString: params["QUERY_STRING"] ?? "", headers: headers,
                       remoteAddress: params["REMOTE_ADDR"] ?? "", scheme: scheme, body: body)
    }

    /// `HTTP_X_API_KEY` → `x-api-key`; CGI's two unprefixed headers are mapped too.
    static func headerName(forParam name: String) -> String? {
        switch name {
        case "CONTENT_TYPE": return "content-type"
        case "CONTENT_LENGTH": return "content-length"
        default:
            guard name.hasPrefix("HTTP_") else { return nil }
            return String(name.dropFirst(5)).lowercased().replacingUnderscores()
        }
    }
}

private extension String {
    func replacingUnderscores() -> String {
        String(unicodeScalars.map { $0 == "_" ? "-" : Character($0) })
    }
}

/// The FastCGI stdin stream as a ``RequestBody``.
///
/// `FCGX_GetStr` returns short only at the end of the stream or on an error,
/// so a short read is checked against the stream's error and the declared length:
/// a client that disconnects mid-upload surfaces here as an error, never as a
/// shorter file. With unbuffered bodies and chunked clients there is no length,
/// and the stream's end is the only signal.
final class FastCGIRequestBody: RequestBody {
    private let stream: UnsafeMutablePointer<FCGX_Stream>?
    private let declaredLength: Int64?
    private var received: Int64 = 0
    private var finished = false

    init(stream: UnsafeMutablePointer<FCGX_Stream>?, declaredLength: Int64?) {
        self.stream = stream
        self.declaredLength = declaredLength
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let stream, !finished, buffer.count > 0 else { return 0 }
        let wanted = Int32(min(buffer.count, Int(Int32.max)))
        let count = FCGX_GetStr(buffer.baseAddress!.assumingMemoryBound(to: CChar.self), wanted, stream)
        if count < 0 || FCGX_GetError(stream) != 0 {
            finished = true
            throw RequestBodyError(.interrupted, "connection to nginx broke after \(received) bytes")
        }
        received += Int64(count)
        if count < wanted {
            finished = true
            if let declaredLength, received < declaredLength {
                throw RequestBodyError(.truncated, "received \(received) of \(declaredLength) bytes")
            }
        }
        return Int(count)
    }
}
