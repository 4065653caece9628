import HTTPCore
import Logging

/// Values a path pattern captured, such as `id` in `/minihost/cache/:id`.
public struct RouteParameters: Sendable {
    var values: [String: String] = [:]
    public subscript(name: String) -> String? { values[name] }
}

public typealias RouteHandler = @Sendable (Request, RouteParameters) throws -> Response

/// How a dialect writes an error body: minihost and most dialects use JSON
/// `{"error": …}`, the plain dialect plain text.
public typealias ErrorRenderer = @Sendable (_ status: HTTPStatus, _ message: String) -> Response

/// Method + path-pattern routing. OPTIONS is answered once, here, for every
/// path that has routes; HEAD is served by the GET route (the writer drops the body).
public final class Router: Sendable {
    struct Route: Sendable {
        let method: String
        let segments: [Segment]
        let handler: RouteHandler
        let renderError: ErrorRenderer
        /// Also answered on the content origin (routes that serve stored bytes).
        let onContentOrigin: Bool
    }

    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    private let routes: [Route]
    private let cors: CORSPolicy
    private let logger: Logger

    init(routes: [Route], cors: CORSPolicy, logger: Logger) {
        self.routes = routes
        self.cors = cors
        self.logger = logger
    }

    public func respond(to request: Request) -> Response {
        let pathSegments = Self.split(request.path)
        let matching = routes.compactMap { route -> (Route, RouteParameters)? in
            // The content origin serves stored bytes and nothing else, even
            // if its nginx server block were to pass another path.
            guard !request.isContentOrigin || route.onContentOrigin else { return nil }
            return Self.match(route.segments, pathSegments).map { (route, $0) }
        }
        var response: Response
        if matching.isEmpty {
            response = JSONResponse.error(.notFound, "Not found")
        } else if request.method == "OPTIONS" {
            let methods = Set(matching.map(\.0.method)).union(["OPTIONS"]).sorted()
            response = Response(status: .noContent)
            cors.applyPreflight(to: &response, request: request, methods: methods)
            return response
        } else {
            let method = request.method == "HEAD" ? "GET" : request.method
            if let (route, parameters) = matching.first(where: { $0.0.method == method }) {
                response = run(route, request, parameters)
            } else {
                let allowed = Set(matching.map(\.0.method)).union(["OPTIONS"]).sorted()
                response = matching[0].0.renderError(.methodNotAllowed, "Method not allowed")
                response.headers.set("Allow", allowed.joined(separator: ", "))
            }
        }
        cors.apply(to: &response, request: request)
        return response
    }

    private func run(_ route: Route, _ request: Request, _ parameters: RouteParameters) -> Response {
        do {
            return try route.handler(request, parameters)
        } catch {
            let (status, message, headers) = ErrorMapping.describe(error, logger: logger, request: request)
            var response = route.renderError(status, message)
            for field in headers { response.headers.add(field.name, field.value) }
            return response
        }
    }

    /// The segments after the leading `/`, empty ones kept: `/x/` is
    /// `["x", ""]`, which no route matches, so a path variant never reaches a
    /// handler through an nginx location meant for another path. A path that
    /// doesn't start with `/` has no segments that match anything.
    static func split(_ path: String) -> [Substring] {
        guard path.hasPrefix("/") else { return [""] }
        return path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
    }

    static func match(_ pattern: [Segment], _ path: [Substring]) -> RouteParameters? {
        guard pattern.count == path.count else { return nil }
        var parameters = RouteParameters()
        for (segment, part) in zip(pattern, path) {
            switch segment {
            case .literal(let text): if text != part { return nil }
            case .parameter(let name):
                guard !part.isEmpty else { return nil }
                parameters.values[name] = String(part)
            }
        }
        return parameters
    }
}

/// Collects routes, then builds an immutable ``Router`` shared by every worker thread.
public struct RouterBuilder {
    private var routes: [Router.Route] = []
    private let cors: CORSPolicy
    private let logger: Logger

    public init(cors: CORSPolicy, logger: Logger) {
        self.cors = cors
        self.logger = logger
    }

    /// Adds a route. `pattern` segments starting with `:` capture a parameter.
    /// `onContentOrigin`: the route serves stored bytes and is also answered
    /// on the content origin.
    public mutating func add(_ method: String, _ pattern: String, errors: @escaping ErrorRenderer = JSONResponse.error,
                             onContentOrigin: Bool = false, _ handler: @escaping RouteHandler) {
        let segments = Router.split(pattern).map { part -> Router.Segment in
            part.hasPrefix(":") ? .parameter(String(part.dropFirst())) : .literal(String(part))
        }
        routes.append(Router.Route(method: method.uppercased(), segments: segments, handler: handler, renderError: errors,
                                   onContentOrigin: onContentOrigin))
    }

    public func build() -> Router {
        Router(routes: routes, cors: cors, logger: logger)
    }
}
