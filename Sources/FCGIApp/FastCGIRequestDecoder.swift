import CFastCGI
import Glibc
import HTTPCore

/// Turns libfcgi's parameter array into a ``Request``. Every string is copied
/// into Swift here: libfcgi frees them at `FCGX_Finish_r`.
enum FastCGIRequestDecoder {
    static func decode(_ request: inout FCGX_Request) -> (request: Request, body: FastCGIRequestBody) {
        var params: [String: String] = [:]
        var headers = HTTPHeaders()
        if var pointer = request.envp {
            while let entry = pointer.pointee {
                let length = strlen(entry)
                entry.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
                    let buffer = UnsafeBufferPointer(start: bytes, count: length)
                    guard let equals = buffer.firstIndex(of: UInt8(ascii: "=")) else { return }
                    let nameBytes = UnsafeBufferPointer(rebasing: buffer[..<equals])
                    let value = String(decoding: UnsafeBufferPointer(rebasing: buffer[(equals + 1)...]), as: UTF8.self)
                    if let header = headerName(forParam: nameBytes) {
                        headers.add(header, value)
                    } else {
                        params[String(decoding: nameBytes, as: UTF8.self)] = value
                    }
                }
                pointer += 1
            }
        }
        let requestURI = params["REQUEST_URI"] ?? "/"
        let path = params["DOCUMENT_URI"].flatMap { $0.isEmpty ? nil : $0 }
            ?? FormURLEncoded.decode(requestURI.split(separator: "?", maxSplits: 1).first ?? "/")
        let scheme = (params["HTTPS"].map { $0.lowercased() == "on" } ?? false) ? "https" : (params["REQUEST_SCHEME"] ?? "http")
        let body = FastCGIRequestBody(stream: request.in, declaredLength: headers["Content-Length"].flatMap { Int64($0) })
        var decoded = Request(method: params["REQUEST_METHOD"] ?? "GET", path: path,
                              queryString: params["QUERY_STRING"] ?? "", headers: headers,
                              remoteAddress: params["REMOTE_ADDR"] ?? "", scheme: scheme,
                              isContentOrigin: params["MINIHOST_CONTENT_ORIGIN"] == "1", body: body)
        let connection = request.ipcFd
        decoded.isAbandoned = { peerClosed(connection) }
        decoded.requestId = params["MINIHOST_REQUEST_ID"].flatMap(RequestId.validated) ?? RequestId.make()
        return (decoded, body)
    }

    /// nginx closes its connection to the worker when the client goes away
    /// (`fastcgi_ignore_client_abort` is off): a hang-up on the socket says so.
    static func peerClosed(_ descriptor: Int32) -> Bool {
        // POLLRDHUP (0x2000) needs _GNU_SOURCE, which the Glibc module lacks.
        let rdHangUp: Int16 = 0x2000
        var entry = pollfd(fd: descriptor, events: rdHangUp, revents: 0)
        guard poll(&entry, 1, 0) == 1 else { return false }
        return entry.revents & (rdHangUp | Int16(POLLHUP) | Int16(POLLERR)) != 0
    }

    /// `HTTP_X_API_KEY` → `x-api-key`; CGI's two unprefixed headers are mapped
    /// too. Works on the bytes: this runs for every parameter of every request.
    static func headerName(forParam name: UnsafeBufferPointer<UInt8>) -> String? {
        let prefix = Array("HTTP_".utf8)
        if name.elementsEqual("CONTENT_TYPE".utf8) { return "content-type" }
        if name.elementsEqual("CONTENT_LENGTH".utf8) { return "content-length" }
        guard name.count > prefix.count, name.starts(with: prefix) else { return nil }
        return String(unsafeUninitializedCapacity: name.count - prefix.count) { output in
            for (index, byte) in name.dropFirst(prefix.count).enumerated() {
                switch byte {
                case UInt8(ascii: "_"): output[index] = UInt8(ascii: "-")
                case UInt8(ascii: "A")...UInt8(ascii: "Z"): output[index] = byte + 32
                default: output[index] = byte
                }
            }
            return name.count - prefix.count
        }
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

    var bytesRead: Int64 { received }

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

    /// At most this much of a body no handler read is discarded to find its end.
    static let discardLimit = 64 * 1024

    /// Whether nginx has sent all it will on this connection: the stream
    /// ended cleanly, read by a handler or found among the bytes already
    /// here (a bodiless request's end arrives with its parameters). Never
    /// waits: the socket is read non-blocking, so a body still on its way
    /// counts as not ended, and so does one longer than ``discardLimit``.
    func endedWithoutWaiting(descriptor: Int32) -> Bool {
        guard let stream else { return false }
        if FCGX_HasSeenEOF(stream) == 0 {
            let flags = fcntl(descriptor, F_GETFL)
            guard flags >= 0, fcntl(descriptor, F_SETFL, flags | O_NONBLOCK) == 0 else { return false }
            defer { _ = fcntl(descriptor, F_SETFL, flags) }
            withUnsafeTemporaryAllocation(of: CChar.self, capacity: 4096) { scratch in
                var discarded = 0
                // EAGAIN ends the stream as an error, which the check below sees.
                while FCGX_HasSeenEOF(stream) == 0, discarded < Self.discardLimit {
                    discarded += Int(max(0, FCGX_GetStr(scratch.baseAddress!, Int32(scratch.count), stream)))
                }
            }
        }
        return FCGX_HasSeenEOF(stream) != 0 && FCGX_GetError(stream) == 0
    }
}
