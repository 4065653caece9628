import HTTPCore
import OpenSSLCrypto
import Store

/// The credential checks behind ``Authentication``, written once for every
/// dialect that uses them.
extension ServerContext {
    /// The API client named by `Authorization: Bearer <client_key>.<secret>`,
    /// which must hold `scope`. Missing, malformed, unknown and wrong all
    /// answer 401 with no hint which; a known client without the scope is 403.
    func authenticateAPIClient(_ request: Request, scope: String) throws -> APIClient {
        let challenge = HTTPHeaders([("WWW-Authenticate", "Bearer")])
        guard let header = request.headers["Authorization"]?.trimmingWhitespace(), !header.isEmpty else {
            throw HTTPErrorResponse(.unauthorized, "Missing Authorization header", headers: challenge)
        }
        let parts = header.splitASCII(" ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer",
              let dot = parts[1].firstASCIIIndex(of: "."),
              case let key = String(parts[1][..<dot]), case let secret = String(parts[1][parts[1].index(after: dot)...]),
              !key.isEmpty, !secret.isEmpty, !secret.utf8.contains(0x20)
        else {
            throw HTTPErrorResponse(.unauthorized, "Malformed Authorization header: expected Bearer <client_key>.<secret>",
                                    headers: challenge)
        }
        guard let client = try store.clients.authenticate(key: key, secret: secret) else {
            throw HTTPErrorResponse(.unauthorized, "Invalid API credentials", headers: challenge)
        }
        guard client.has(scope: scope) else {
            throw HTTPErrorResponse(.forbidden, "This API client lacks the \(scope) scope")
        }
        return client
    }

    /// The signed-in operator, or 401.
    func authenticateOperator(_ request: Request) throws -> OperatorIdentity {
        guard let token = operatorCookie.token(in: request),
              let username = try store.operators.username(forSession: token) else {
            throw HTTPErrorResponse(.unauthorized, "Operator session required")
        }
        return OperatorIdentity(username: username)
    }

    /// The account `username` and `password` in `fields` verify as; nil when
    /// either is missing; 401 when wrong. Recently verified credentials skip
    /// scrypt (``VerifiedCredentialCache``); a wait for scrypt re-checks the
    /// cache and gives up if the client left meanwhile.
    func accountCredential(_ fields: [String: String], _ request: Request) throws -> AccountCredential? {
        guard let username = fields["username"], let password = fields["password"],
              !username.isEmpty, !password.isEmpty else { return nil }
        let cache = verifiedCredentials
        if let credential = try cachedCredential(username: username, password: password) { return credential }
        let found = try passwordHashing.run { () throws -> AccountCredential? in
            // Waiting may have taken a while: the client may be gone, or a
            // request with the same credentials (a script's parallel lanes)
            // may have verified them meanwhile. Either way, no scrypt.
            if request.isAbandoned() { throw ClientGone() }
            if let credential = try cachedCredential(username: username, password: password) { return credential }
            return try store.accounts.verifyAccount(username: username, password: password, decoyHash: decoyPasswordHash)
        }
        guard let found else { throw HTTPErrorResponse(.unauthorized, "Invalid credentials") }
        cache.remember(username: username, password: password, as: VerifiedAccount(found))
        return found
    }

    private func cachedCredential(username: String, password: String) throws -> AccountCredential? {
        guard let recent = verifiedCredentials.account(username: username, password: password) else { return nil }
        if let credential = try store.accounts.revalidate(recent) { return credential }
        verifiedCredentials.forget(username: username, password: password)
        return nil
    }

    /// Verifies a password (an operator's, an account's) under the shared
    /// limiter; false for a nil hash (an unknown name) too, after the same work.
    func verifyPassword(_ password: String, hash: String?, _ request: Request) throws -> Bool {
        try passwordHashing.run { () throws -> Bool in
            if request.isAbandoned() { throw ClientGone() }
            return try Scrypt.verify(password: password, encoded: hash ?? decoyPasswordHash)
        }
    }
}
