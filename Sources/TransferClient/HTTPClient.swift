import CCurl
import Foundation

/// A transfer that failed before an HTTP answer arrived (connection refused,
/// reset, timed out), as libcurl reported it. Worth retrying.
public struct TransferError: Error, CustomStringConvertible {
    public struct Code: Hashable, Sendable {
        let value: UInt32
        /// The connection broke or never came up: retry.
        public static let network = Code(value: 1)
        /// A local problem (the file, the options): don't.
        public static let local = Code(value: 2)
    }

    public let code: Code
    public let description: String
}

/// One HTTP request: a body from a file range or from memory, and where
/// the answer's body goes.
public struct TransferRequest {
    public enum Body {
        case none
        case bytes([UInt8])
        /// `length` bytes of the open file `descriptor` from `offset`, read as sent.
        case file(descriptor: Int32, offset: Int64, length: Int64)
    }

    public var method: String
    public var url: String
    public var headers: [(String, String)]
    public var body: Body
    /// Receives the answer's body as it arrives; nil keeps it in ``TransferResponse/body``.
    public var receive: ((UnsafeRawBufferPointer) throws -> Void)?
    /// Called with the bytes sent and received so far.
    public var progress: ((_ sent: Int64, _ received: Int64) -> Void)?

    public init(method: String, url: String, headers: [(String, String)] = [], body: Body = .none,
                receive: ((UnsafeRawBufferPointer) throws -> Void)? = nil,
                progress: ((Int64, Int64) -> Void)? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.receive = receive
        self.progress = progress
    }
}

public struct TransferResponse {
    public var status: Int
    /// Names in lowercase.
    public var headers: [String: String]
    public var body: [UInt8]

    public subscript(header name: String) -> String? { headers[name.lowercased()] }
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// HTTP over libcurl's easy interface: blocking, one request at a time per
/// client, keeping its connection alive between requests. libcurl because
/// the CLI is a blocking program like the server (no event loop to host
/// AsyncHTTPClient), it is on every Debian machine, and it gives resumable
/// uploads what they need: a body read from a file range as it is sent,
/// progress callbacks, and exact errors for a dropped connection.
///
/// Not thread-safe: give each thread its own client.
public final class HTTPClient {
    private let handle: UnsafeMutableRawPointer
    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    public init() throws {
        _ = Self.globalInit
        guard let handle = curl_easy_init() else { throw TransferError(code: .local, description: "curl_easy_init failed") }
        self.handle = handle
    }

    deinit { curl_easy_cleanup(handle) }

    /// Sends `request` and waits for the whole answer. Throws
    /// ``TransferError`` when no complete answer arrived.
    public func perform(_ request: TransferRequest) throws -> TransferResponse {
        curl_easy_reset(handle)
        let context = CallbackContext(request)
        let unmanaged = Unmanaged.passRetained(context)
        defer { unmanaged.release() }
        let pointer = unmanaged.toOpaque()
        var list: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(list) }
        // No "Expect: 100-continue" round trip before each body.
        for (name, value) in request.headers + [("Expect", "")] {
            list = curl_slist_append(list, value.isEmpty ? "\(name):" : "\(name): \(value)")
        }
        try check(minihost_curl_set_string(handle, CURLOPT_URL, request.url))
        try check(minihost_curl_set_long(handle, CURLOPT_NOSIGNAL, 1))
        try check(minihost_curl_set_long(handle, CURLOPT_CONNECTTIMEOUT, 15))
        // A stalled connection is a dropped one: under 1 KB/s for 30 s.
        try check(minihost_curl_set_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1024))
        try check(minihost_curl_set_long(handle, CURLOPT_LOW_SPEED_TIME, 30))
        try check(minihost_curl_set_data_callback(handle, CURLOPT_HEADERFUNCTION, headerCallback))
        try check(minihost_curl_set_pointer(handle, CURLOPT_HEADERDATA, pointer))
        try check(minihost_curl_set_data_callback(handle, CURLOPT_WRITEFUNCTION, writeCallback))
        try check(minihost_curl_set_pointer(handle, CURLOPT_WRITEDATA, pointer))
        if request.progress != nil {
            try check(minihost_curl_set_long(handle, CURLOPT_NOPROGRESS, 0))
            try check(minihost_curl_set_progress_callback(handle, progressCallback))
            try check(minihost_curl_set_pointer(handle, CURLOPT_XFERINFODATA, pointer))
        }
        switch request.body {
        case .none:
            if request.method == "HEAD" {
                try check(minihost_curl_set_long(handle, CURLOPT_NOBODY, 1))
            } else if request.method != "GET" {
                try check(minihost_curl_set_string(handle, CURLOPT_CUSTOMREQUEST, request.method))
                if request.method == "POST" { list = curl_slist_append(list, "Content-Length: 0") }
            }
        case .bytes(let bytes):
            try setUpload(length: Int64(bytes.count), method: request.method, pointer: pointer)
        case .file(_, _, let length):
            try setUpload(length: length, method: request.method, pointer: pointer)
        }
        try check(minihost_curl_set_slist(handle, CURLOPT_HTTPHEADER, list))
        let result = curl_easy_perform(handle)
        if let failure = context.failure { throw failure }
        guard result == CURLE_OK else {
            throw TransferError(code: result == CURLE_READ_ERROR ? .local : .network,
                                description: String(cString: curl_easy_strerror(result)))
        }
        var status = 0
        _ = minihost_curl_response_code(handle, &status)
        return TransferResponse(status: status, headers: context.headers, body: context.body)
    }

    private func setUpload(length: Int64, method: String, pointer: UnsafeMutableRawPointer) throws {
        try check(minihost_curl_set_long(handle, CURLOPT_UPLOAD, 1))
        // libcurl's default 64 KB means a read and a send per 64 KB; 1 MiB cuts the calls 16-fold.
        try check(minihost_curl_set_long(handle, CURLOPT_UPLOAD_BUFFERSIZE, 1 << 20))
        try check(minihost_curl_set_offset(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(length)))
        try check(minihost_curl_set_string(handle, CURLOPT_CUSTOMREQUEST, method))
        try check(minihost_curl_set_data_callback(handle, CURLOPT_READFUNCTION, readCallback))
        try check(minihost_curl_set_pointer(handle, CURLOPT_READDATA, pointer))
    }

    private func check(_ code: CURLcode) throws {
        guard code == CURLE_OK else { throw TransferError(code: .local, description: String(cString: curl_easy_strerror(code))) }
    }
}

/// What libcurl's callbacks share for one request.
private final class CallbackContext {
    let request: TransferRequest
    var headers: [String: String] = [:]
    var body: [UInt8] = []
    var sent: Int64 = 0
    var failure: Error?

    init(_ request: TransferRequest) { self.request = request }
}

private func context(_ pointer: UnsafeMutableRawPointer?) -> CallbackContext {
    Unmanaged<CallbackContext>.fromOpaque(pointer!).takeUnretainedValue()
}

private let headerCallback: minihost_curl_data_callback = { data, size, count, user in
    let context = context(user)
    let line = String(decoding: UnsafeRawBufferPointer(start: data, count: size * count), as: UTF8.self)
    if line.hasPrefix("HTTP/") { context.headers = [:] }  // a new answer (after a redirect or 100)
    if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].lowercased()
        context.headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
    }
    return size * count
}

private let writeCallback: minihost_curl_data_callback = { data, size, count, user in
    let context = context(user)
    let bytes = UnsafeRawBufferPointer(start: data, count: size * count)
    if let receive = context.request.receive {
        do { try receive(bytes) } catch {
            context.failure = error
            return 0  // makes libcurl stop with an error
        }
    } else {
        context.body.append(contentsOf: bytes)
    }
    return size * count
}

private let readCallback: minihost_curl_data_callback = { buffer, size, count, user in
    let context = context(user)
    let room = size * count
    switch context.request.body {
    case .none:
        return 0
    case .bytes(let bytes):
        let start = Int(context.sent)
        let length = min(room, bytes.count - start)
        guard length > 0 else { return 0 }
        bytes.withUnsafeBytes { UnsafeMutableRawPointer(buffer!).copyMemory(from: $0.baseAddress! + start, byteCount: length) }
        context.sent += Int64(length)
        return length
    case .file(let descriptor, let offset, let total):
        let want = Int(min(Int64(room), total - context.sent))
        guard want > 0 else { return 0 }
        let got = pread(descriptor, buffer, want, off_t(offset + context.sent))
        guard got > 0 else {
            context.failure = TransferError(code: .local, description: "reading the file failed")
            return Int(CURL_READFUNC_ABORT)
        }
        context.sent += Int64(got)
        return got
    }
}

private let progressCallback: minihost_curl_progress_callback = { user, _, received, _, sent in
    context(user).request.progress?(Int64(sent), Int64(received))
    return 0
}
