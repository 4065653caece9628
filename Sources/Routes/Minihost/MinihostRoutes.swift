import Foundation
import HTTPCore
import Store

/// The native dialect: API clients (`Bearer key.secret` with scopes), private
/// uploads and downloads, follow-up metadata, publishing to public cache URLs,
/// and the operator endpoints. Paths and bodies follow `minihost-api.txt`.
struct MinihostRoutes {
    let context: ServerContext

    var store: MinihostStore { context.store }
    var configuration: ServerConfiguration { context.configuration }

    func register(in builder: inout RouterBuilder) {
        builder.add("POST", "/api/minihost/upload") { request, _ in try upload(request) }
        builder.add("GET", "/api/minihost/download") { request, _ in try download(request) }
        builder.add("POST", "/api/minihost/upload_follow_up") { request, _ in try followUp(request) }
        builder.add("POST", "/api/minihost/publishing_upload") { request, _ in try publish(request) }
        builder.add("GET", "/minihost/cache/:id", onContentOrigin: true) { request, parameters in
            try cached(parameters["id"], request)
        }
        builder.add("GET", "/api/minihost/cache/:id", onContentOrigin: true) { request, parameters in
            try cached(parameters["id"], request)
        }
        builder.add("POST", "/api/minihost/admin-login") { request, _ in try adminLogin(request) }
        builder.add("POST", "/api/minihost/admin-logout") { request, _ in try adminLogout(request) }
        builder.add("GET", "/api/minihost/admin-download") { request, _ in adminDownloadRedirect(request) }
        builder.add("GET", "/minihost/dashboard/admin-download") { request, _ in try adminDownload(request) }
        builder.add("POST", "/api/minihost/admin-purge-unhandled") { request, _ in try adminPurgeUnhandled(request) }
    }

    // MARK: - Credentials

    /// The API client named by `Authorization: Bearer <client_key>.<secret>`,
    /// which must hold `scope`. Missing, malformed, unknown and wrong all
    /// answer 401 with no hint which; a known client without the scope is 403.
    func authenticate(_ request: Request, scope: String) throws -> APIClient {
        guard let header = request.headers["Authorization"]?.trimmingWhitespace(), !header.isEmpty else {
            throw HTTPErrorResponse(.unauthorized, "Missing Authorization header",
                                    headers: HTTPHeaders([("WWW-Authenticate", "Bearer")]))
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer",
              let dot = parts[1].firstIndex(of: "."),
              case let key = String(parts[1][..<dot]), case let secret = String(parts[1][parts[1].index(after: dot)...]),
              !key.isEmpty, !secret.isEmpty, !secret.contains(" ")
        else {
            throw HTTPErrorResponse(.unauthorized, "Malformed Authorization header: expected Bearer <client_key>.<secret>",
                                    headers: HTTPHeaders([("WWW-Authenticate", "Bearer")]))
        }
        guard let client = try store.authenticateClient(key: key, secret: secret) else {
            throw HTTPErrorResponse(.unauthorized, "Invalid API credentials",
                                    headers: HTTPHeaders([("WWW-Authenticate", "Bearer")]))
        }
        guard client.has(scope: scope) else {
            throw HTTPErrorResponse(.forbidden, "This API client lacks the \(scope) scope")
        }
        return client
    }

    /// Writes an audit line; a failure to write it is logged, never fatal.
    /// Returns the value for the `X-Minihost-Audit` echo header.
    @discardableResult
    func audit(_ request: Request, actor: String, action: String, uploadId: String?, status: Int,
               detail: String? = nil) -> String {
        do {
            try store.record(AuditEvent(actor: actor, action: action, uploadId: uploadId, status: status,
                                        remoteAddr: request.remoteAddress, detail: detail))
            return "recorded"
        } catch {
            context.logger.error("audit insert failed", metadata: ["action": "\(action)", "error": "\(error)"])
            return "failed"
        }
    }

    /// Runs `body`, auditing its outcome (success or the error's status).
    func audited(_ request: Request, actor: String, action: String, uploadId: String?,
                 _ body: () throws -> Response) throws -> Response {
        do {
            var response = try body()
            let echo = audit(request, actor: actor, action: action, uploadId: uploadId, status: response.status.code)
            if configuration.auditEcho { response.headers.set("X-Minihost-Audit", echo) }
            return response
        } catch {
            let status = ErrorMapping.status(of: error)
            let echo = audit(request, actor: actor, action: action, uploadId: uploadId, status: status)
            if configuration.auditEcho { throw EchoedError(underlying: error, echo: echo) }
            throw error
        }
    }
}

/// An error that carries the audit echo header with it; ``ErrorMapping``
/// answers for the underlying error and adds the header.
struct EchoedError: Error {
    let underlying: Error
    let echo: String
}
