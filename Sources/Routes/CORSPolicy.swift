import HTTPCore

/// Which browser origins may call the API. Server-side callers don't need CORS.
public struct CORSPolicy: Sendable {
    /// The built-in origins: common local development ports. No third-party
    /// site is ever allowed by default; the deployment's own public origin
    /// is added, and anything else only through `MINIHOST_CORS_ORIGINS`.
    public static let developmentOrigins = [
        "http://localhost:3000", "http://localhost:5173", "http://localhost:8080",
        "http://127.0.0.1:3000", "http://127.0.0.1:5173", "http://127.0.0.1:8080",
    ]

    public let allowedOrigins: Set<String>

    /// The allowed origins in a stable order, for the nginx config.
    public var sortedOrigins: [String] { allowedOrigins.sorted() }

    public init(publicOrigin: String? = nil, extraOrigins: [String] = []) {
        let configured = ([publicOrigin].compactMap { $0 } + extraOrigins).map(Self.normalize).filter { !$0.isEmpty }
        allowedOrigins = Set(Self.developmentOrigins + configured)
    }

    static func normalize(_ origin: String) -> String {
        var text = origin.trimmingWhitespace()
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }

    func allowedOrigin(for request: Request) -> String? {
        guard let origin = request.headers["Origin"], allowedOrigins.contains(Self.normalize(origin)) else { return nil }
        return origin
    }

    func apply(to response: inout Response, request: Request) {
        guard let origin = allowedOrigin(for: request) else { return }
        response.headers.set("Access-Control-Allow-Origin", origin)
        response.headers.set("Access-Control-Allow-Credentials", "true")
        response.headers.set("Access-Control-Expose-Headers", Self.exposedHeaders)
        response.headers.add("Vary", "Origin")
    }

    /// What scripts on an allowed origin may read: tus clients in a browser
    /// (tus-js-client, Uppy) need the protocol's headers.
    static let exposedHeaders = ["Content-Disposition", "X-Minihost-Audit", "X-Request-Id", "Location", "Upload-Offset",
                                 "Upload-Length", "Upload-Defer-Length", "Upload-Metadata", "Upload-Expires", "Upload-Concat",
                                 "Tus-Resumable", "Tus-Version", "Tus-Extension", "Tus-Max-Size", "Tus-Checksum-Algorithm"]
        .joined(separator: ", ")

    func applyPreflight(to response: inout Response, request: Request, methods: [String]) {
        apply(to: &response, request: request)
        guard allowedOrigin(for: request) != nil else { return }
        response.headers.set("Access-Control-Allow-Methods", methods.joined(separator: ", "))
        response.headers.set("Access-Control-Allow-Headers",
                             request.headers["Access-Control-Request-Headers"] ?? "Authorization, Content-Type")
        response.headers.set("Access-Control-Max-Age", "600")
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        // Most values have nothing to trim: don't rebuild them.
        if let first = scalars.first, let last = scalars.last,
           !first.properties.isWhitespace, !last.properties.isWhitespace { return String(self) }
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(String.UnicodeScalarView(scalars[first...last]))
    }
}
