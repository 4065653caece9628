/// An error that knows how to answer: a status, the dialect's own code for
/// it (S3's `NoSuchKey`, the uploader's `errorId`), a message safe to show,
/// details, and extra headers. Handlers throw these; each dialect renders
/// them once, in its own body format (see `Routes/Dialect.swift`).
public protocol HTTPError: Error {
    var status: HTTPStatus { get }
    /// The dialect's code for this error, if it has one.
    var code: String? { get }
    /// Safe to show the client: never a secret, a path or an internal detail.
    var publicMessage: String { get }
    /// More fields for the body (JSON keys, XML elements), also safe to show.
    var details: [String: String] { get }
    /// Extra headers the answer needs (for example `WWW-Authenticate`).
    var headers: HTTPHeaders { get }
}

extension HTTPError {
    public var code: String? { nil }
    public var details: [String: String] { [:] }
    public var headers: HTTPHeaders { HTTPHeaders() }
}

/// The common case: a status and a message, optionally a code, details and headers.
public struct HTTPErrorResponse: HTTPError, CustomStringConvertible {
    public let status: HTTPStatus
    public let code: String?
    public let publicMessage: String
    public let details: [String: String]
    public let headers: HTTPHeaders

    public init(_ status: HTTPStatus, _ message: String, code: String? = nil, details: [String: String] = [:],
                headers: HTTPHeaders = HTTPHeaders()) {
        self.status = status
        self.code = code
        self.publicMessage = message
        self.details = details
        self.headers = headers
    }

    public var description: String { "\(status): \(publicMessage)" }
}
