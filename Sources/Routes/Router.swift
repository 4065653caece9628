import HTTPCore
import Logging

/// Answers requests from a validated ``RouteTable``: matches the path,
/// parses a small body, runs the route's authentication, calls the handler,
/// and renders whatever it throws in the route's dialect.
///
/// Matching walks a tree of path segments. At each segment a literal beats a
/// parameter, which beats a catch-all; when a branch fails further on, the
/// next one is tried. `HEAD` is served by `GET` and `OPTIONS` by the CORS
/// preflight, unless a route declares its own. Two routes may share a method
/// and path when one takes `multipart/form-data` and the other any other
/// body (``Route/bodyVariant``): the request's `Content-Type` picks.
public final class Router: Sendable {
    private let root: Node
    private let cors: CORSPolicy
    private let server: ServerContext
    private let logger: Logger
    /// For paths no route has: JSON, like nginx's own 404.
    private let fallback = Dialect.json

    init(table: RouteTable, server: ServerContext, cors: CORSPolicy, logger: Logger) {
        let root = Node()
        for route in table.routes { root.insert(route, at: route.path.segments[...]) }
        self.root = root
        self.cors = cors
        self.server = server
        self.logger = logger
    }

    public func respond(to request: Request) -> Response {
        var response = answer(request)
        cors.apply(to: &response, request: request)
        return response
    }

    private func answer(_ request: Request) -> Response {
        let segments = Self.split(request.path)
        let method = request.method
        let onContentOrigin = request.isContentOrigin
        let usable = { (route: Route) in !onContentOrigin || route.onContentOrigin }
        let variant = BodyVariant(contentType: request.headers["Content-Type"])
        // A browser's CORS preflight is answered here even where a route has
        // its own OPTIONS (tus's is a protocol question, not a preflight).
        let preflight = method == "OPTIONS" && request.headers["Access-Control-Request-Method"] != nil
        if !preflight, let (route, parameters) = root.find(segments[...], RouteParameters(), { node in
            node.route(method, variant).flatMap { usable($0) ? $0 : nil }
                ?? (method == "HEAD" ? node.route("GET", variant).flatMap { usable($0) ? $0 : nil } : nil)
        }) {
            return run(route, request, parameters)
        }
        var allowed = Set<String>()
        var dialect: Dialect?
        root.forEachMatch(segments[...]) { node in
            for route in node.routes.values.joined() where usable(route) {
                allowed.insert(route.method)
                dialect = dialect ?? route.dialect
            }
        }
        guard let dialect else {
            return fallback.render(ErrorAnswer(status: .notFound, message: "Not found"))
        }
        allowed.insert("OPTIONS")
        if allowed.contains("GET") { allowed.insert("HEAD") }
        if method == "OPTIONS" {
            var response = Response(status: .noContent)
            cors.applyPreflight(to: &response, request: request, methods: allowed.sorted())
            return response
        }
        var response = dialect.render(ErrorAnswer(status: .methodNotAllowed, message: "Method not allowed"))
        response.headers.set("Allow", allowed.sorted().joined(separator: ", "))
        for field in dialect.headers { response.headers.set(field.name, field.value) }
        return response
    }

    private func run(_ route: Route, _ request: Request, _ parameters: RouteParameters) -> Response {
        var response: Response
        do {
            let routed = try prepare(route, request, parameters)
            response = try route.handler(routed)
            if !routed.authenticated {
                // A handler that takes credentials from a streamed body must check them.
                logger.critical("route answered without authenticating", metadata: ["route": "\(route.name)"])
                response = route.dialect.render(ErrorAnswer(status: .internalServerError, message: "Internal server error"))
            }
        } catch {
            response = route.dialect.render(ErrorMapping.answer(for: error, logger: logger, request: request))
        }
        for field in route.dialect.headers { response.headers.set(field.name, field.value) }
        response.answeredBy = AnsweringRoute(route: route.path.text, dialect: route.api)
        return response
    }

    /// Runs the route's authentication and parses a small body: a header or
    /// cookie credential is checked before a byte of the body is read;
    /// credentials in form fields once the fields are parsed; credentials
    /// inside a streamed body by the handler, when they arrive.
    private func prepare(_ route: Route, _ request: Request, _ parameters: RouteParameters) throws -> RouteRequest {
        let early = RouteRequest(request: request, parameters: parameters, server: server, route: route)
        if !route.auth.readsBodyFields { try early.authenticate(with: [:]) }
        var fields: [String: String] = [:]
        var json: [String: Any] = [:]
        switch route.body.kind {
        case .form: fields = try request.formFields(limit: Int(route.body.limit))
        case .json:
            let limit = Int(route.body.limit)
            json = route.body.optional ? try request.optionalJSONObject(limit: limit) : try request.jsonObject(limit: limit)
        case .none, .multipart, .raw: return early
        }
        let routed = RouteRequest(request: request, parameters: parameters, server: server, route: route,
                                  fields: fields, json: json, identity: early.authenticated ? early.identity : nil)
        if route.auth.readsBodyFields { try routed.authenticate(with: fields) }
        return routed
    }

    /// The segments after the leading `/`, empty ones kept (see ``PathPattern``).
    static func split(_ path: String) -> [Substring] {
        guard path.hasPrefix("/") else { return [""] }
        return path.dropFirst().splitASCII("/", omittingEmptySubsequences: false)
    }

    /// One path segment's branches.
    final class Node: @unchecked Sendable {
        var literals: [Substring: Node] = [:]
        var parameters: [(name: String, constraint: ParameterConstraint, node: Node)] = []
        var catchAlls: [(name: String, node: Node)] = []
        /// By method: one route, or two with different ``BodyVariant``s.
        var routes: [String: [Route]] = [:]

        func route(_ method: String, _ variant: BodyVariant) -> Route? {
            guard let candidates = routes[method] else { return nil }
            if candidates.count == 1 { return candidates[0] }
            return candidates.first { $0.bodyVariant == variant }
        }

        func insert(_ route: Route, at segments: ArraySlice<PathPattern.Segment>) {
            guard let segment = segments.first else {
                routes[route.method, default: []].append(route)
                return
            }
            let rest = segments.dropFirst()
            switch segment {
            case .literal(let text):
                let child = literals[Substring(text)] ?? Node()
                literals[Substring(text)] = child
                child.insert(route, at: rest)
            case .parameter(let name, let constraint):
                if let existing = parameters.first(where: { $0.name == name && $0.constraint == constraint }) {
                    existing.node.insert(route, at: rest)
                } else {
                    let child = Node()
                    parameters.append((name, constraint, child))
                    child.insert(route, at: rest)
                }
            case .catchAll(let name):
                if let existing = catchAlls.first(where: { $0.name == name }) {
                    existing.node.routes[route.method, default: []].append(route)
                } else {
                    let child = Node()
                    child.routes[route.method] = [route]
                    catchAlls.append((name, child))
                }
            }
        }

        /// The first route `select` takes from a node matching `path`, in
        /// precedence order, with the parameters captured on the way.
        func find(_ path: ArraySlice<Substring>, _ captured: RouteParameters,
                  _ select: (Node) -> Route?) -> (Route, RouteParameters)? {
            guard let segment = path.first else {
                return select(self).map { ($0, captured) }
            }
            let rest = path.dropFirst()
            if let child = literals[segment], let found = child.find(rest, captured, select) { return found }
            for (name, constraint, child) in parameters where constraint.matches(segment) {
                var next = captured
                next.values[name] = String(segment)
                if let found = child.find(rest, next, select) { return found }
            }
            for (name, child) in catchAlls {
                let tail = path.joined(separator: "/")
                guard !tail.isEmpty, let route = select(child) else { continue }
                var next = captured
                next.values[name] = tail
                return (route, next)
            }
            return nil
        }

        /// Calls `visit` with every node that matches `path`.
        func forEachMatch(_ path: ArraySlice<Substring>, _ visit: (Node) -> Void) {
            guard let segment = path.first else { return visit(self) }
            let rest = path.dropFirst()
            literals[segment]?.forEachMatch(rest, visit)
            for (_, constraint, child) in parameters where constraint.matches(segment) { child.forEachMatch(rest, visit) }
            if !path.joined(separator: "/").isEmpty { catchAlls.forEach { visit($0.node) } }
        }
    }
}
