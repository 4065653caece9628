import Foundation
import HTTPCore
import OpenSSLCrypto
import Store

/// Who may call the s4 routes: an operator (`minihost admin create`) with a
/// token from `POST /api/auth/login`, sent as `Authorization: Bearer` or the
/// HttpOnly cookie `s4_auth_token`; on event streams also a one-time ticket.
/// Tokens are operator sessions, stored hashed.
enum S4Auth {
    static let cookieName = "s4_auth_token"
    /// Who calls when `MINIHOST_S4_AUTH=off`.
    static let developmentUser = "anonymous"

    /// A valid token, unless auth is explicitly off.
    static func token(_ configuration: S4Configuration) -> Authentication {
        guard configuration.authEnabled else {
            return Authentication(name: "none (MINIHOST_S4_AUTH=off)") { _ in OperatorIdentity(username: developmentUser) }
        }
        return Authentication(name: "s4 token") { input in
            guard let username = try session(input.request, input.server) else {
                throw HTTPErrorResponse(.unauthorized, "Authentication required", code: "Unauthorized")
            }
            return OperatorIdentity(username: username)
        }
    }

    /// A token, or a `?ticket=` (used up here; the handler checks it names its resource).
    static func stream(_ configuration: S4Configuration) -> Authentication {
        let plain = token(configuration)
        return Authentication(name: "s4 token or stream ticket") { input in
            if let ticket = input.request.query["ticket"], !ticket.isEmpty {
                guard let redeemed = try input.server.store.streamTickets.redeem(ticket) else {
                    throw HTTPErrorResponse(.unauthorized, "Invalid or expired ticket", code: "Unauthorized")
                }
                return S4TicketIdentity(ticket: redeemed)
            }
            return try plain.check!(input)
        }
    }

    /// The token a request carries (header first, then cookie), if any.
    static func presentedToken(_ request: Request) -> String? {
        if let header = request.headers["Authorization"] {
            let parts = header.splitASCII(" ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                let token = parts[1].trimmingWhitespace()
                return token.isEmpty ? nil : String(token)
            }
        }
        guard let value = request.cookie(cookieName), !value.isEmpty else { return nil }
        return String(value)
    }

    /// The operator whose live session the request's token is, or nil.
    static func session(_ request: Request, _ server: ServerContext) throws -> String? {
        guard let token = presentedToken(request), Hex.isLowercaseHex(token, length: 64) else { return nil }
        return try server.store.operators.username(forSession: token)
    }
}

/// An event stream opened with a one-time ticket.
struct S4TicketIdentity: Identity {
    let ticket: StreamTicketStore.Ticket
}

extension S4Routes {
    /// `GET /api/auth/info`.
    func authInfo(_ route: RouteRequest) -> Response {
        JSONResponse.make(["authEnabled": configuration.authEnabled, "authMode": configuration.authEnabled ? "simple" : "none"])
    }

    /// `POST /api/auth/login` `{username, password}`: 5 attempts a minute
    /// per address across every worker, then 429 with `retryAfter`.
    func login(_ route: RouteRequest) throws -> Response {
        guard configuration.authEnabled else {
            throw HTTPErrorResponse(.badRequest, "Authentication is disabled", code: "AuthDisabled")
        }
        let request = route.request
        try limit(request, action: "login", count: 5, words: "login attempts")
        guard let username = try route.json.string("username"), let password = try route.json.string("password"),
              !username.isEmpty, !password.isEmpty else {
            throw HTTPErrorResponse(.badRequest, "Username and password are required", code: "BadRequest")
        }
        let account = try store.operators.record(username: username)
        let verified = try context.verifyPassword(password, hash: account?.passwordHash, request)
        guard let account, verified else {
            throw HTTPErrorResponse(.unauthorized, "Invalid username or password", code: "Unauthorized")
        }
        let lifetime = configuration.sessionLifetime
        let token = try store.operators.createSession(username: account.username, lifetime: lifetime)
        var response = JSONResponse.make([
            "token": token,
            "user": ["id": account.username, "username": account.username, "roles": ["admin"]],
            "expiresIn": Int(lifetime),
        ])
        let secure = context.configuration.secureCookies ? "; Secure" : ""
        response.headers.add("Set-Cookie", "\(S4Auth.cookieName)=\(token); Path=/api; Max-Age=\(Int(lifetime)); HttpOnly; SameSite=Strict" + secure)
        response.headers.set("Cache-Control", "no-store")
        return response
    }

    /// `POST /api/auth/logout`: ends the session the request carries, clears the cookie.
    func logout(_ route: RouteRequest) throws -> Response {
        if let token = S4Auth.presentedToken(route.request), token.utf8.count == 64 {
            try store.operators.revokeSession(token: token)
        }
        var response = JSONResponse.make(["message": "Logged out successfully"])
        let secure = context.configuration.secureCookies ? "; Secure" : ""
        response.headers.add("Set-Cookie", "\(S4Auth.cookieName)=; Path=/api; Max-Age=0; HttpOnly; SameSite=Strict" + secure)
        return response
    }

    /// `GET /api/auth/me`.
    func me(_ route: RouteRequest) -> Response {
        let username = route.identity(OperatorIdentity.self).username
        return JSONResponse.make(["user": ["id": username, "username": username, "roles": ["admin"]]])
    }

    /// `POST /api/auth/sse-ticket` `{resource, resourceType}`: a ticket good
    /// once, for 60 seconds, for that resource's stream; 20 a minute per address.
    func issueTicket(_ route: RouteRequest) throws -> Response {
        let request = route.request
        try limit(request, action: "sse-ticket", count: 20, words: "ticket requests")
        guard let resource = try route.json.string("resource"), !resource.isEmpty, resource.utf8.count <= 4096 else {
            throw HTTPErrorResponse(.badRequest, "resource is required", code: "BadRequest")
        }
        let type = try route.json.string("resourceType") ?? "upload"
        guard ["upload", "transfer"].contains(type) else {
            throw HTTPErrorResponse(.badRequest, "resourceType must be upload or transfer", code: "BadRequest")
        }
        let lifetime: TimeInterval = 60
        let now = Date()
        let ticket = try store.streamTickets.issue(username: route.identity(OperatorIdentity.self).username,
                                                   resource: resource, resourceType: type, lifetime: lifetime, now: now)
        let path = type == "upload" ? "/objects/upload-progress/" : "/transfer/progress/"
        return JSONResponse.make([
            "ticket": ticket,
            "sseUrl": path + FormURLEncoded.encode(resource) + "?ticket=" + ticket,
            "expiresAt": Int64((now.timeIntervalSince1970 + lifetime) * 1000),
            "expiresIn": Int(lifetime),
        ])
    }

    /// Counts this request against `count` a minute for the caller's
    /// address (shared by every worker process); 429 with `retryAfter`
    /// (seconds) and `Retry-After` past it.
    func limit(_ request: Request, action: String, count: Int, words: String) throws {
        let key = "s4-\(action):" + context.addressKey(request.remoteAddress)
        let now = Date()
        guard let until = try store.rateWindows.take(key, limit: count, window: 60, now: now) else { return }
        let seconds = max(1, Int(until.timeIntervalSince(now).rounded(.up)))
        throw HTTPErrorResponse(.tooManyRequests, "Too many \(words). Maximum \(count) per minute.", code: "RateLimitExceeded",
                                details: ["retryAfter": String(seconds)],
                                headers: HTTPHeaders([("Retry-After", String(seconds))]))
    }
}

extension ServerContext {
    /// A client address as a key for shared counters: an HMAC under the
    /// data folder's secret, so the database holds no addresses.
    func addressKey(_ address: String) -> String {
        let mac = (try? HMACSHA256.authenticate(Array(("address:" + address).utf8), key: operatorCookie.signingKey)) ?? []
        return Hex.encode(Array(mac.prefix(16)))
    }
}
