import HTTPCore

/// An error as a dialect renders it: what ``ErrorMapping`` makes of any
/// thrown error, safe to show.
public struct ErrorAnswer: Sendable {
    public var status: HTTPStatus
    /// The dialect's own code (S3's `NoSuchKey`, the uploader's `errorId`).
    public var code: String?
    public var message: String
    public var details: [String: String]
    public var headers: HTTPHeaders

    public init(status: HTTPStatus, code: String? = nil, message: String, details: [String: String] = [:],
                headers: HTTPHeaders = HTTPHeaders()) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers
    }
}

/// How one API dialect answers: the body format of its errors (the worker's
/// and nginx's own 413/429/5xx alike), and headers on every answer. Route
/// groups name their dialect once; every route in them answers this way.
public struct Dialect: Sendable {
    public let name: String
    public let renderError: @Sendable (ErrorAnswer) -> Response
    /// Added to every answer of the dialect's routes (tus: `Tus-Resumable`).
    public let headers: HTTPHeaders

    public init(name: String, headers: HTTPHeaders = HTTPHeaders(),
                renderError: @escaping @Sendable (ErrorAnswer) -> Response) {
        self.name = name
        self.headers = headers
        self.renderError = renderError
    }

    /// `{"error": message, …details}`, as most dialects answer.
    public static let json = Dialect(name: "json") { answer in
        var object: [String: Any] = ["error": answer.message]
        for (key, value) in answer.details where key != "error" { object[key] = value }
        var response = JSONResponse.make(object, status: answer.status)
        response.headers.set("Cache-Control", "no-store")
        return response
    }

    /// `ERR message` in plain text, for shell scripts (the plain dialect).
    public static let plainText = Dialect(name: "text") { answer in
        PlainTextResponse.make("ERR \(answer.message)", status: answer.status)
    }

    func render(_ answer: ErrorAnswer) -> Response {
        var response = renderError(answer)
        for field in answer.headers { response.headers.add(field.name, field.value) }
        return response
    }
}
