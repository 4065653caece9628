import HTTPCore
import Store

/// What one route is, declared once: this drives the router, the auth check,
/// the body handling, the error format, and the nginx `location` that fronts
/// it (`minihost nginx-config`, `minihost up`).
public struct Route: Sendable {
    public let method: String
    public let path: PathPattern
    public let dialect: Dialect
    public let auth: Authentication
    public let body: BodyPolicy
    public let limit: RateLimit
    /// The answer streams (server-sent events): nginx must not buffer it.
    public let streamsResponse: Bool
    /// Also answered on the content origin (routes that serve stored bytes).
    public let onContentOrigin: Bool
    /// Set when nginx may answer the route itself from the public tree.
    public let publicFile: PublicFile?
    let handler: RouteHandler
    /// The API the route belongs to (`minihost`, `plain`, …: the registering
    /// ``DialectRoutes``), for metrics and logs; the error format is `dialect`.
    public internal(set) var api: String = ""

    /// `GET /api/health` (for messages and conflicts).
    public var name: String { "\(method) \(path)" }

    /// The body size nginx lets through for this route.
    public var nginxBodyLimit: Int64 { body.nginxLimit }

    /// Which requests this route takes when another route shares its method
    /// and path: a multipart route takes `multipart/form-data`, the other
    /// every other body.
    public var bodyVariant: BodyVariant { body.kind == .multipart ? .multipart : .other }
}

/// Whether a request's body is `multipart/form-data`, which is how one path
/// serves two dialects (`POST /api/upload`: an uploader upload as a form,
/// a skysend upload as raw bytes). nginx decides the same way from
/// `$content_type` (``NginxPlan/bodyVariantRegex``), so its rate limits and
/// refusals follow the route the worker will pick.
public enum BodyVariant: String, Sendable {
    case multipart
    case other

    /// Leading blanks skipped, compared without case: `multipart/form-data` and its parameters.
    public init(contentType: String?) {
        guard let contentType else {
            self = .other
            return
        }
        let trimmed = contentType.drop { $0 == " " || $0 == "\t" }
        self = trimmed.lowercased().hasPrefix("multipart/form-data") ? .multipart : .other
    }
}

/// A route whose answer is a public file: nginx serves it straight from the
/// ``PublicTree`` (no worker, no database) when the tree holds a link for
/// the id in the path and nginx's index (``PublicIndex``) holds the headers
/// the route answers with; otherwise the route's handler answers as usual.
///
/// The route must be a `GET` with one constrained parameter (the id), no
/// authentication, no body and no rate limit, and for an id its handler
/// must answer the same headers for as long as the link exists (re-linking
/// is how a changed answer reaches the index). Its handler answers with
/// `cacheControl`; an answer that doesn't is left to the worker.
public struct PublicFile: Sendable {
    public let tree: PublicTree.Kind
    public let cacheControl: String

    public init(tree: PublicTree.Kind, cacheControl: String) {
        self.tree = tree
        self.cacheControl = cacheControl
    }
}

/// A handler gets the request with its parameters, its parsed body and the
/// identity its route's ``Authentication`` established.
public typealias RouteHandler = @Sendable (RouteRequest) throws -> Response

/// How a route takes its body. nginx enforces `limit` (its
/// `client_max_body_size`, with room for multipart framing) and either
/// buffers the body whole before a worker sees it or streams it through.
public struct BodyPolicy: Sendable {
    public enum Kind: String, Sendable {
        /// No body is read.
        case none
        /// A JSON object, parsed before the handler runs (``RouteRequest/json``).
        case json
        /// Form fields from `application/x-www-form-urlencoded` or a JSON
        /// object, parsed before the handler runs (``RouteRequest/fields``).
        case form
        /// `multipart/form-data`, streamed by the handler (``FileUploadReceiver``).
        case multipart
        /// Raw bytes, streamed by the handler (``RawBodyReceiver``).
        case raw
    }

    public let kind: Kind
    /// For `.json`: an empty body is an empty object instead of a 400.
    public var optional = false
    /// The most bytes the route takes.
    public let limit: Int64
    /// True: nginx passes the body on as it arrives (fast, but a slow sender
    /// holds a worker thread: only for routes that check a credential or
    /// capability before reading it). False: nginx buffers it first.
    public let streamed: Bool
    /// nginx's 413 message for this route, in its dialect's format.
    public let tooLargeMessage: String

    public static let none = BodyPolicy(kind: .none, limit: 0, streamed: false, tooLargeMessage: "Request body too large")

    public static func json(limit: Int64 = 1 << 20, optional: Bool = false) -> BodyPolicy {
        BodyPolicy(kind: .json, optional: optional, limit: limit, streamed: false, tooLargeMessage: "Request body too large")
    }

    public static func form(limit: Int64 = 64 << 10) -> BodyPolicy {
        BodyPolicy(kind: .form, limit: limit, streamed: false, tooLargeMessage: "Request body too large")
    }

    public static func multipart(limit: Int64, streamed: Bool, tooLarge: String) -> BodyPolicy {
        BodyPolicy(kind: .multipart, limit: limit, streamed: streamed, tooLargeMessage: tooLarge)
    }

    public static func raw(limit: Int64, streamed: Bool, tooLarge: String) -> BodyPolicy {
        BodyPolicy(kind: .raw, limit: limit, streamed: streamed, tooLargeMessage: tooLarge)
    }

    /// What nginx allows: the limit plus room for multipart framing and fields.
    var nginxLimit: Int64 {
        switch kind {
        case .none: return 1 << 20  // requests without a body still may send a little
        case .json, .form, .raw: return max(limit, 1 << 10)
        case .multipart: return limit + FileUploadReceiver.framingAllowance
        }
    }
}

/// A per-address rate-limit class, enforced by nginx (429 with
/// `Retry-After: 1`, in the route's dialect). Routes of one class share its
/// zone; `burst` may differ per class over one zone. The limits are per host.
public struct RateLimit: Sendable, Hashable {
    /// The nginx zone (`minihost_<zone>`), and its rate.
    public let zone: String
    public let rate: String
    public let burst: Int
    /// Concurrent requests one address may have on such routes (nginx `limit_conn`).
    public let connections: Int?

    public init(zone: String, rate: String, burst: Int, connections: Int? = nil) {
        self.zone = zone
        self.rate = rate
        self.burst = burst
        self.connections = connections
    }

    /// No limit (public cache URLs, served at nginx speed).
    public static let none = RateLimit(zone: "", rate: "", burst: 0)
    /// Ordinary API calls.
    public static let api = RateLimit(zone: "api", rate: "50r/s", burst: 200)
    /// Operator sign-in: every attempt is a scrypt, and a guess.
    public static let login = RateLimit(zone: "login", rate: "10r/m", burst: 5)
    /// Username + password in the body: a wrong one costs a scrypt.
    public static let credentials = RateLimit(zone: "credentials", rate: "5r/s", burst: 20, connections: 16)
    /// Uploads streamed into a worker: 16 at once per address.
    public static let upload = RateLimit(zone: "upload", rate: "10r/s", burst: 20, connections: 16)
    /// Chunks of resumable uploads: the upload zone, with room for parallel lanes.
    public static let chunk = RateLimit(zone: "upload", rate: "10r/s", burst: 40, connections: 16)

    public var isNone: Bool { zone.isEmpty }
}

/// Routes as dialects register them: in groups that set the dialect, a path
/// prefix, the auth and the rate-limit class once.
public struct RouteTable: Sendable {
    public private(set) var routes: [Route] = []
    /// The API whose routes are being declared (see ``Route/api``).
    var registering = ""

    public init() {}

    /// Adds routes in `build`, which sees a group with these defaults.
    public mutating func group(_ dialect: Dialect, prefix: String = "", auth: Authentication = .none,
                               limit: RateLimit = .api, _ build: (inout RouteGroup) -> Void) {
        var group = RouteGroup(dialect: dialect, prefix: prefix, auth: auth, limit: limit)
        build(&group)
        let api = registering
        routes += group.routes.map { route in
            var route = route
            route.api = api
            return route
        }
    }

    /// Refuses two routes no precedence rule tells apart (the same method,
    /// and the same segments with parameters in the same places, unless
    /// their ``Route/bodyVariant``s differ), naming both.
    public func validated() throws -> RouteTable {
        for route in routes where route.publicFile != nil {
            guard route.method == "GET", route.auth.check == nil, route.body.kind == .none, route.limit.isNone,
                  route.publicIdParameter != nil else {
                throw RouteDeclarationError("\(route.name) serves a public file: it must be a GET with one constrained "
                                            + "parameter, no authentication, no body and no rate limit")
            }
        }
        for (index, route) in routes.enumerated() {
            for other in routes[(index + 1)...] where other.method == route.method && other.path.sameShape(as: route.path) {
                guard other.bodyVariant != route.bodyVariant, other.path.text == route.path.text else {
                    throw RouteConflict(first: route.name, second: other.name)
                }
            }
        }
        return self
    }
}

/// Two routes would answer the same request.
public struct RouteConflict: Error, CustomStringConvertible {
    public let first: String
    public let second: String
    public var description: String { "routes \(first) and \(second) could answer the same request" }
}

/// A route declared in a way the table can't serve.
public struct RouteDeclarationError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension Route {
    /// For a ``PublicFile`` route: its one parameter, constrained to
    /// characters the public tree names files with.
    var publicIdParameter: (name: String, constraint: ParameterConstraint)? {
        let parameters = path.segments.compactMap { segment -> (String, ParameterConstraint)? in
            if case .parameter(let name, let constraint) = segment { return (name, constraint) }
            return nil
        }
        guard parameters.count == 1, path.segments.allSatisfy({ if case .catchAll = $0 { false } else { true } }),
              let (name, constraint) = parameters.first, constraint.isPublicTreeName else { return nil }
        return (name, constraint)
    }
}

/// Routes that share a dialect, a prefix and defaults.
public struct RouteGroup {
    public let dialect: Dialect
    public let prefix: String
    public var auth: Authentication
    public var limit: RateLimit
    fileprivate(set) var routes: [Route] = []

    init(dialect: Dialect, prefix: String, auth: Authentication, limit: RateLimit) {
        self.dialect = dialect
        self.prefix = prefix
        self.auth = auth
        self.limit = limit
    }

    /// Declares a route; unspecified properties take the group's defaults.
    public mutating func add(_ method: String, _ path: String, constraints: [String: ParameterConstraint] = [:],
                             auth: Authentication? = nil, body: BodyPolicy = .none, limit: RateLimit? = nil,
                             streamsResponse: Bool = false, onContentOrigin: Bool = false, publicFile: PublicFile? = nil,
                             _ handler: @escaping RouteHandler) {
        routes.append(Route(method: method.uppercased(), path: PathPattern(prefix + path, constraints: constraints),
                            dialect: dialect, auth: auth ?? self.auth, body: body, limit: limit ?? self.limit,
                            streamsResponse: streamsResponse, onContentOrigin: onContentOrigin, publicFile: publicFile,
                            handler: handler))
    }
}
