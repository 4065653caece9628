import Foundation
import HTTPCore
import OpenSSLCrypto
import Store

/// A user account's access token, as ``UploaderAuth/token`` established it.
struct UploaderIdentity: Identity {
    let user: User
    let token: AccessToken
    /// The token as presented (it is the answer of `GET /api/login/token`).
    let presented: String
}

/// Section 1.1 of the document: the access token's errors, all 401.
enum UploaderAuth {
    /// Marks an error as a token error, rendered as `auth_error`.
    static let marker = "uploader-auth"

    static func error(_ errorId: Int, _ message: String) -> HTTPErrorResponse {
        HTTPErrorResponse(.unauthorized, message, code: String(errorId), details: [marker: "1"])
    }

    static let token = Authentication(name: "uploader access token") { input in
        try identity(input.request.headers["Authorization"], store: input.server.store)
    }

    /// The account behind an `Authorization` header, or the 1.1 error.
    static func identity(_ header: String?, store: MinihostStore) throws -> UploaderIdentity {
        guard let header = header?.trimmingWhitespace(), !header.isEmpty else {
            throw error(-1, "No Authorization header provided")
        }
        let parts = header.splitASCII(" ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty else {
            throw error(-2, "Authorization header must have Bearer <token> format")
        }
        return try identity(token: String(parts[1]), store: store)
    }

    static func identity(token: String, store: MinihostStore) throws -> UploaderIdentity {
        guard UploaderStore.isWellFormed(token) else { throw error(-4, "Invalid access token") }
        switch try store.uploader.checkToken(token) {
        case .valid(let user, let record): return UploaderIdentity(user: user, token: record, presented: token)
        case .expired: throw error(-3, "Access token expired")
        case .notFound: throw error(-5, "Token not found")
        }
    }
}

extension UploaderRoutes {
    /// Username and password from the JSON body, or error 2.
    private func credentials(_ route: RouteRequest) throws -> (username: String, password: String) {
        guard let username = try? route.json.string("username"), let password = try? route.json.string("password"),
              !username.isEmpty, !password.isEmpty else {
            throw Self.error(.badRequest, 2, "No username/password provided")
        }
        return (username, password)
    }

    private func lifetime(bot: Bool) -> TimeInterval {
        bot ? configuration.botTokenLifetime : configuration.tokenLifetime
    }

    private func isBot(_ route: RouteRequest) -> Bool { FormFlag.isTrue(route.request.query["bot"]) }

    /// `POST /api/register[?bot=true]`: a new account (a user of the core, so
    /// the plain dialect knows it too) and its first token.
    func register(_ route: RouteRequest) throws -> Response {
        guard configuration.registrationOpen else {
            throw HTTPErrorResponse(.forbidden, "Registration is closed on this server")
        }
        let (username, password) = try credentials(route)
        let request = route.request
        do {
            // The hash is the expensive part; it waits its turn like every password check.
            _ = try context.passwordHashing.run { () throws -> User in
                if request.isAbandoned() { throw ClientGone() }
                return try store.accounts.createUser(username: username, password: password, hasher: context.passwordHasher)
            }
        } catch let error as StorageError where error.code == .conflict {
            throw Self.error(.badRequest, 1, "An account with this name is already registered")
        } catch let error as StorageError where error.code == .invalid {
            // Not in the document: its accounts take any name and password.
            throw Self.error(.badRequest, 6, error.detail.prefix(1).uppercased() + error.detail.dropFirst())
        }
        let bot = isBot(route)
        let token = try store.uploader.issueToken(username: username, longLived: bot, lifetime: lifetime(bot: bot))
        return JSONResponse.make(["status": "success", "accessToken": token, "username": username,
                                  "message": "registered"])
    }

    /// `POST /api/login[?bot=true]`: a token for the account's primary
    /// password. As documented, an unknown user (404, errorId 4) and a wrong
    /// password (400, errorId 3) answer differently; both take one scrypt.
    func login(_ route: RouteRequest) throws -> Response {
        let (username, password) = try credentials(route)
        let request = route.request
        let user = try store.accounts.user(username: username)
        let matches = try context.verifyPassword(password, hash: user?.passwordHash, request)
        guard let user else { throw Self.error(.notFound, 4, "User not found") }
        guard matches else { throw Self.error(.badRequest, 3, "Wrong password") }
        let bot = isBot(route)
        let token = try store.uploader.issueToken(username: user.username, longLived: bot, lifetime: lifetime(bot: bot))
        return JSONResponse.make(["status": "success", "accessToken": token, "username": user.username,
                                  "message": "logged in with password"])
    }

    /// `POST /api/refresh_token` `{"accessToken"}`: a new token for a current
    /// one, which ends.
    func refreshToken(_ route: RouteRequest) throws -> Response {
        guard let token = try? route.json.string("accessToken"), !token.isEmpty else {
            throw Self.error(.badRequest, 5, "No access token provided")
        }
        let identity = try UploaderAuth.identity(token: token, store: store)
        guard let next = try store.uploader.refreshToken(identity.token, lifetime: lifetime(bot: identity.token.longLived)) else {
            throw UploaderAuth.error(-5, "Token not found")  // refreshed meanwhile
        }
        return JSONResponse.make(["status": "success", "accessToken": next, "username": identity.user.username,
                                  "message": "token refreshed"])
    }

    /// `POST /api/logout`: ends the presented token.
    func logout(_ route: RouteRequest) throws -> Response {
        let identity = route.identity(UploaderIdentity.self)
        try store.uploader.revokeToken(identity.presented)
        return JSONResponse.make(["status": "success", "message": "logged out"])
    }

    /// `GET /api/login/token` (the client library's "log in by token").
    func loginWithToken(_ route: RouteRequest) throws -> Response {
        let identity = route.identity(UploaderIdentity.self)
        return JSONResponse.make(["status": "success", "username": identity.user.username,
                                  "accessToken": identity.presented, "message": "logged in with token"])
    }

    /// `POST /api/transfer` `{"data": [{"file_url", "key"}]}`: anonymous files
    /// whose key matches move into the account; the rest come back in
    /// `unsuccess`.
    func transfer(_ route: RouteRequest) throws -> Response {
        let identity = route.identity(UploaderIdentity.self)
        guard let items = route.json["data"] as? [Any] else {
            throw HTTPErrorResponse(.badRequest, "data must be a list of {file_url, key}")
        }
        guard items.count <= 1000 else { throw HTTPErrorResponse(.badRequest, "At most 1000 files per transfer") }
        var unsuccess: [Any] = []
        for item in items {
            guard let object = item as? [String: Any], let fileURL = object["file_url"] as? String,
                  let key = object["key"] as? String,
                  let file = try store.uploader.file(fileURL: Self.idPart(of: fileURL)),
                  file.upload.owner == UploaderStore.anonymous,
                  try UploaderDeleteKey.matches(key, uploadId: file.upload.id, signingKey: context.operatorCookie.signingKey),
                  try store.uploader.transfer(file, to: identity.user.username)
            else {
                unsuccess.append(item)
                continue
            }
        }
        return JSONResponse.make(["status": "success", "message": "transferred", "unsuccess": unsuccess])
    }
}
