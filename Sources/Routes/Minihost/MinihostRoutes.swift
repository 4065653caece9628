import Foundation
import HTTPCore
import Store

/// The native dialect: API clients (`Bearer key.secret` with scopes), private
/// uploads and downloads, follow-up metadata, publishing to public cache URLs,
/// and the operator endpoints. Paths and bodies follow `minihost-api.txt`;
/// errors are JSON `{"error": …}`.
struct MinihostRoutes: DialectRoutes, ContextRoutes {
    let context: ServerContext

    init(_ context: ServerContext) { self.context = context }

    var configuration: ServerConfiguration { context.configuration }

    /// Upload ids: 128 random bits in lowercase hex.
    static let uploadId = ParameterConstraint.characters("0123456789abcdef", count: 32...32, regexClass: "0-9a-f",
                                                         example: "0123456789abcdef0123456789abcdef")
    /// Public cache URLs never change what they answer.
    static let cacheControl = "public, max-age=31536000, immutable"

    static let api = "minihost"

    static func register(in table: inout RouteTable, configuration: ServerConfiguration) {
        let maxMB = configuration.maxUploadMB
        table.group(.json, prefix: "/api/minihost") { api in
            api.add("POST", "/upload", auth: .apiClient(scope: "upload"),
                    body: .multipart(limit: configuration.maxUploadBytes, streamed: true,
                                     tooLarge: "File too large (max \(maxMB) MB)"),
                    limit: .upload) { try Self($0.server).upload($0) }
            api.add("GET", "/download", auth: .apiClient(scope: "download")) { try Self($0.server).download($0) }
            api.add("POST", "/upload_follow_up", auth: .apiClient(scope: "upload"), body: .json()) {
                try Self($0.server).followUp($0)
            }
            api.add("POST", "/publishing_upload", auth: .apiClient(scope: "publish"), body: .json()) {
                try Self($0.server).publish($0)
            }
            api.add("POST", "/admin-login", body: .json(limit: 16 << 10), limit: .login) { try Self($0.server).adminLogin($0) }
            api.add("POST", "/admin-logout") { try Self($0.server).adminLogout($0) }
            api.add("GET", "/admin-download") { Self($0.server).adminDownloadRedirect($0) }
            api.add("POST", "/admin-purge-unhandled", auth: .operatorSession, body: .json(limit: 16 << 10, optional: true)) {
                try Self($0.server).adminPurgeUnhandled($0)
            }
        }
        // Public cache URLs: no credentials, no rate limit, also on the content
        // origin; nginx answers them itself from the public tree.
        table.group(.json, limit: .none) { cache in
            for prefix in ["/minihost/cache", "/api/minihost/cache"] {
                cache.add("GET", prefix + "/:id", constraints: ["id": uploadId], onContentOrigin: true,
                          publicFile: PublicFile(tree: .cache, cacheControl: cacheControl)) { try Self($0.server).cached($0) }
            }
        }
        table.group(.json, prefix: "/minihost/dashboard", auth: .operatorSession) { dashboard in
            dashboard.add("GET", "/admin-download") { try Self($0.server).adminDownload($0) }
        }
    }

    /// Writes an audit line; a failure to write it is logged, never fatal.
    /// Returns the value for the `X-Minihost-Audit` echo header.
    @discardableResult
    func audit(_ request: Request, actor: String, action: String, uploadId: String?, status: Int,
               detail: String? = nil) -> String {
        do {
            try store.audit.record(AuditEvent(actor: actor, action: action, uploadId: uploadId, status: status,
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
