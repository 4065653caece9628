import Foundation
import HTTPCore
import OpenSSLCrypto
import Store

extension MinihostRoutes {
    /// `POST /api/minihost/admin-login` `{username, password}` → session cookie.
    func adminLogin(_ route: RouteRequest) throws -> Response {
        let request = route.request
        guard let username = try route.json.string("username"), let password = try route.json.string("password"),
              !username.isEmpty, !password.isEmpty else {
            throw HTTPErrorResponse(.badRequest, "username and password are required")
        }
        let account = try store.operators.record(username: username)
        let verified = try context.verifyPassword(password, hash: account?.passwordHash, request)
        guard let account, verified else {
            audit(request, actor: "operator:?", action: "admin_login", uploadId: nil, status: 401,
                  detail: "failed sign-in")
            throw HTTPErrorResponse(.unauthorized, "Invalid username or password")
        }
        let token = try store.operators.createSession(username: account.username,
                                                    lifetime: configuration.operatorSessionLifetime)
        let echo = audit(request, actor: "operator:\(account.username)", action: "admin_login", uploadId: nil, status: 200)
        var response = JSONResponse.make(["ok": true])
        response.headers.add("Set-Cookie", try context.operatorCookie.setCookie(token: token))
        response.headers.set("Cache-Control", "no-store")
        if configuration.auditEcho { response.headers.set("X-Minihost-Audit", echo) }
        return response
    }

    /// `POST /api/minihost/admin-logout`: ends the session (if any) and clears the cookie.
    func adminLogout(_ route: RouteRequest) throws -> Response {
        let request = route.request
        if let token = context.operatorCookie.token(in: request) {
            let username = try store.operators.username(forSession: token)
            try store.operators.revokeSession(token: token)
            if let username {
                audit(request, actor: "operator:\(username)", action: "admin_logout", uploadId: nil, status: 200)
            }
        }
        var response = JSONResponse.make(["ok": true])
        response.headers.add("Set-Cookie", context.operatorCookie.clearCookie())
        return response
    }

    /// `GET /api/minihost/admin-download` → 307 to the dashboard path, same query
    /// (some proxies strip cookies on `/api/*`).
    func adminDownloadRedirect(_ route: RouteRequest) -> Response {
        let request = route.request
        var location = "/minihost/dashboard/admin-download"
        if !request.queryString.isEmpty { location += "?" + request.queryString }
        var response = JSONResponse.make(["location": location], status: .temporaryRedirect)
        response.headers.set("Location", location)
        return response
    }

    /// `GET /minihost/dashboard/admin-download?id=…[&inline=1]`: any upload, for operators.
    func adminDownload(_ route: RouteRequest) throws -> Response {
        let request = route.request
        let username = route.identity(OperatorIdentity.self).username
        guard let id = request.query["id"], !id.isEmpty else { throw HTTPErrorResponse(.badRequest, "Missing id") }
        guard let upload = try store.upload(id: id), upload.state == .ready else {
            throw HTTPErrorResponse(.notFound, "Upload not found")
        }
        audit(request, actor: "operator:\(username)", action: "admin_download", uploadId: id, status: 200)
        let inline = ["1", "true"].contains(request.query["inline"] ?? "")
        return StoredContent.response(upload, store: store, request: request, disposition: inline ? .inline : .attachment,
                                      cacheControl: "private, no-store")
    }

    /// `POST /api/minihost/admin-purge-unhandled`: purges API clients' ready
    /// uploads that no app marked handled before the cutoff. The cutoff is
    /// `MINIHOST_UNHANDLED_CUTOFF_HOURS` ago, or `olderThanHours` from the body.
    func adminPurgeUnhandled(_ route: RouteRequest) throws -> Response {
        let request = route.request
        let username = route.identity(OperatorIdentity.self).username
        let body = route.json
        var age = configuration.unhandledCutoff
        if let raw = body["olderThanHours"] {
            let limit = ServerConfiguration.maxHours
            guard let hours = raw as? Double, hours.isFinite, (0...limit).contains(hours), !([String: Any].isBoolean(raw)) else {
                throw HTTPErrorResponse(.badRequest, "olderThanHours must be a number of hours from 0 to \(Int(limit))")
            }
            age = hours * 3600
        }
        let now = Date()
        let cutoff = now.addingTimeInterval(-age)
        return try audited(request, actor: "operator:\(username)", action: "admin_purge_unhandled", uploadId: nil) {
            // "Unhandled" is an API-client notion: other dialects' files are never candidates.
            let counts = try store.purgeUnhandled(ownerKind: .apiClient, createdBefore: cutoff, now: now)
            return JSONResponse.make([
                "ok": true, "cutoff": ISO8601Timestamp.format(cutoff),
                "candidateCount": counts.candidates, "purgedCount": counts.purged,
            ])
        }
    }
}
