import HTTPCore
import Store

/// Values a path pattern captured, such as `id` in `/minihost/cache/:id`.
public struct RouteParameters: Sendable {
    var values: [String: String] = [:]
    public subscript(name: String) -> String? { values[name] }
}

/// One request as a handler sees it: the request, its path parameters, the
/// server, what the route's body policy parsed, and the identity its
/// authentication established.
public final class RouteRequest {
    public let request: Request
    public let parameters: RouteParameters
    public let server: ServerContext
    let route: Route
    /// Form fields (a `.form` body, or a JSON object's scalar values).
    public let fields: [String: String]
    /// The JSON object of a `.json` body.
    public let json: [String: Any]
    public private(set) var identity: any Identity = Anonymous()
    /// Whether the route's authentication has run (or needs none).
    private(set) var authenticated: Bool

    init(request: Request, parameters: RouteParameters, server: ServerContext, route: Route,
         fields: [String: String] = [:], json: [String: Any] = [:], identity: (any Identity)? = nil) {
        self.request = request
        self.parameters = parameters
        self.server = server
        self.route = route
        self.fields = fields
        self.json = json
        self.identity = identity ?? Anonymous()
        authenticated = route.auth.check == nil || identity != nil
    }

    /// The identity as the type the route's authentication gives (an
    /// ``APIClient``, an ``OperatorIdentity``, an ``AccountCredential``).
    public func identity<T: Identity>(_ type: T.Type) -> T {
        guard let typed = identity as? T else {
            preconditionFailure("\(route.name) expects a \(T.self) identity; its authentication is \(route.auth.name)")
        }
        return typed
    }

    /// Runs the route's authentication with `fields` (credentials that came
    /// inside a streamed body). Throws its refusal.
    @discardableResult
    public func authenticate(fields: [String: String]) throws -> any Identity {
        try authenticate(with: fields)
        return identity
    }

    func authenticate(with fields: [String: String]) throws {
        guard let check = route.auth.check else { return }
        identity = try check(AuthInput(request: request, fields: fields, server: server))
        authenticated = true
    }

    /// The value of a path parameter the route's pattern guarantees.
    public subscript(parameter name: String) -> String {
        guard let value = parameters[name] else { preconditionFailure("\(route.name) has no parameter \(name)") }
        return value
    }
}
