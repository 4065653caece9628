/// An error that knows the status it should answer with. Handlers throw these;
/// each dialect renders them in its own body format.
public protocol HTTPError: Error {
    var status: HTTPStatus { get }
    /// Safe to show the client: never a secret, a path or an internal detail.
    var publicMessage: String { get }
    /// Extra headers the answer needs (for example `WWW-Authenticate`).
    var headers: HTTPHeaders { get }
}

extension HTTPError {
    public var headers: HTTPHeaders { HTTPHeaders() }
}

/// The common case: a status and a message.
public struct HTTPErrorResponse: HTTPError, CustomStringConvertible {
    public let status: HTTPStatus
    public let publicMessage: String
    public let headers: HTTPHeaders

    public init(_ status: HTTPStatus, _ message: String, headers: HTTPHeaders = HTTPHeaders()) {
        self.status = status
        self.publicMessage = message
        self.headers = headers
    }

    public var description: String { "\(status): \(publicMessage)" }
}
