/// What a handler answers: a status, headers and a body. FCGIApp turns it into
/// FastCGI output; tests inspect it directly.
public struct Response {
    public var status: HTTPStatus
    public var headers: HTTPHeaders
    public var body: ResponseBody
    /// The route that answered and its dialect, for the request log and
    /// metrics; nil when no route matched.
    public var answeredBy: AnsweringRoute?

    public init(status: HTTPStatus = .ok, headers: HTTPHeaders = HTTPHeaders(), body: ResponseBody = .bytes([])) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Which declared route answered a request: names for logs and metric labels,
/// never derived from the request itself (so a path can't mint new series).
public struct AnsweringRoute: Sendable, Hashable {
    public let route: String
    public let dialect: String

    public init(route: String, dialect: String) {
        self.route = route
        self.dialect = dialect
    }
}

/// The three ways bytes leave a worker.
public enum ResponseBody {
    /// A small body built in memory (JSON, text, HTML).
    case bytes([UInt8])
    /// Bytes produced while they are written, for bodies too large to build first.
    case stream((ResponseBodyWriter) throws -> Void)
    /// A stored file. Behind nginx this becomes an `X-Accel-Redirect` and nginx
    /// serves the bytes (sendfile, Range); without accel the worker streams it.
    case file(ServedFile)
}

/// Where stream bodies go.
public protocol ResponseBodyWriter {
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Sends what was written so far to the client now (event streams).
    func flush() throws
}

extension ResponseBodyWriter {
    public func flush() throws {}
}

/// A file that nginx serves from its internal blob location.
public struct ServedFile: Sendable, Equatable {
    /// Path below the blob root, for example `ab/cd/abcd…` (never user input).
    public var relativePath: String
    /// The same file on this machine, for serving without accel.
    public var absolutePath: String
    public var size: Int64
    /// The internal nginx location it is under, when not the blob store's
    /// (a local storage location's `/_local/<id>/`); `relativePath` is then
    /// percent-encoded.
    public var accelPrefix: String?

    public init(relativePath: String, absolutePath: String, size: Int64, accelPrefix: String? = nil) {
        self.relativePath = relativePath
        self.absolutePath = absolutePath
        self.size = size
        self.accelPrefix = accelPrefix
    }
}
