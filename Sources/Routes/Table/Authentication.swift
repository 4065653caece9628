import HTTPCore
import Store

/// Who a request is, as its route's ``Authentication`` established it.
/// Handlers read it with ``RouteRequest/identity(_:)``.
public protocol Identity: Sendable {}

/// No credential was asked for.
public struct Anonymous: Identity {}

/// A signed-in operator (the minihost dialect's admin routes).
public struct OperatorIdentity: Identity {
    public let username: String
}

extension APIClient: Identity {}
extension AccountCredential: Identity {}

/// How a route checks who is calling, declared with the route. The check
/// runs before the handler, after the body policy parsed a small body; its
/// failures (401/403/400) are rendered in the route's dialect.
///
/// Where credentials arrive inside a streamed body (a multipart form with
/// username and password fields), the check can only run once they have
/// arrived: the handler calls ``RouteRequest/authenticate(fields:)`` then,
/// and the router answers 500 if a handler returned without doing so.
public struct Authentication: Sendable {
    public let name: String
    let check: (@Sendable (AuthInput) throws -> any Identity)?
    /// The credentials are body fields.
    let readsBodyFields: Bool
    /// nginx lets only loopback addresses through (operators' own tools on
    /// the machine: metrics scrapers).
    public let loopbackOnly: Bool

    public init(name: String, readsBodyFields: Bool = false, loopbackOnly: Bool = false,
                check: (@Sendable (AuthInput) throws -> any Identity)?) {
        self.name = name
        self.readsBodyFields = readsBodyFields
        self.loopbackOnly = loopbackOnly
        self.check = check
    }

    /// Callers on this machine only: nginx denies every other address, and
    /// the check refuses any that gets past it (a misconfigured front).
    public static let loopback = Authentication(name: "loopback", loopbackOnly: true) { input in
        guard LoopbackAddress.contains(input.request.remoteAddress) else {
            throw HTTPErrorResponse(.forbidden, "Forbidden")
        }
        return Anonymous()
    }

    /// Anyone; a capability in the request (an upload session id) may stand in.
    public static let none = Authentication(name: "none", check: nil)

    /// `Authorization: Bearer <client_key>.<secret>` of an API client holding `scope`.
    public static func apiClient(scope: String) -> Authentication {
        Authentication(name: "api client (\(scope))") { input in
            try input.server.authenticateAPIClient(input.request, scope: scope)
        }
    }

    /// A signed-in operator (cookie `minihost_admin`).
    public static let operatorSession = Authentication(name: "operator session") { input in
        try input.server.authenticateOperator(input.request)
    }

    /// `username` and `password` body fields of an account (plain dialect),
    /// checked with scrypt under the shared limiter and credential cache.
    /// Missing fields answer `missing` (the dialect's words differ by route).
    public static func accountPassword(missing: HTTPErrorResponse) -> Authentication {
        Authentication(name: "account password", readsBodyFields: true) { input in
            guard let credential = try input.server.accountCredential(input.fields, input.request) else { throw missing }
            return credential
        }
    }
}

/// What a check sees.
public struct AuthInput {
    public let request: Request
    /// The body's fields, when the route's credentials are fields.
    public let fields: [String: String]
    public let server: ServerContext
}
