import Foundation
import HTTPCore
import Store

/// The nginx side of a ``RouteTable``: one `location` per route path, with the
/// route's body limit and buffering, its rate-limit zones, response
/// buffering for streams, and nginx's own 413/429/5xx answered in the route's
/// dialect. `minihost up` and `minihost nginx-config` render these values
/// into `deploy/nginx/minihost.conf.mustache`; no API location is written by hand.
public struct NginxPlan {
    public struct Location {
        /// `r<n>`, stable for a table.
        public let id: String
        public let pattern: PathPattern
        public let routes: [Route]
        /// nginx's `location` argument: `= /exact` or `~ "^regex$"`.
        public var matcher: String {
            pattern.isLiteral ? "= \(pattern.text)" : "~ \"\(pattern.nginxRegex)\""
        }
        public var maxBody: Int64 { routes.map(\.body.nginxLimit).max() ?? 1 << 20 }
        public var streamed: Bool { routes.contains { $0.body.streamed } }
        /// A large body may take a while to arrive; a small one may not.
        public var bodyTimeout: String { routes.contains { $0.body.kind == .multipart || $0.body.kind == .raw } ? "60s" : "15s" }
        public var largeBody: Bool { maxBody > 1 << 20 }
        public var streamsResponse: Bool { routes.contains(where: \.streamsResponse) }
        public var limited: [Route] { routes.filter { !$0.limit.isNone } }
        /// Each zone once, with the largest burst any of its routes here allows.
        public var zones: [(zone: String, burst: Int)] {
            var bursts: [String: Int] = [:]
            for route in limited { bursts[route.limit.zone] = max(bursts[route.limit.zone] ?? 0, route.limit.burst) }
            return bursts.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        }
        public var connections: Int? { limited.compactMap(\.limit.connections).min() }
        public var dialect: Dialect { routes[0].dialect }
        /// The route nginx may answer from the public tree, if one is here.
        public var publicRoute: Route? { routes.first { $0.publicFile != nil } }
        /// Every route here is for loopback callers only.
        public var loopbackOnly: Bool { routes.allSatisfy(\.auth.loopbackOnly) }
        /// Two routes share a method here, told apart by ``BodyVariant``: the
        /// location's rate-limit key and refusals then follow the body's.
        public var splitsOnBody: Bool { Set(routes.map(\.method)).count < routes.count }
        /// What the location sets `$minihost_location` to: its id, plus the
        /// body's variant where that picks the route.
        public var key: String { splitsOnBody ? "\(id)-$\(NginxPlan.bodyVariantVariable)" : id }
        /// The routes, for the config's comments: `POST /api/upload (uploader: multipart)`.
        public var description: String {
            routes.map { splitsOnBody ? "\($0.name) (\($0.api): \($0.bodyVariant.rawValue))" : $0.name }.joined(separator: ", ")
        }
        /// The values `$minihost_location` takes here, and the routes each one may reach.
        var keyedRoutes: [(key: String, routes: [Route])] {
            guard splitsOnBody else { return [(id, routes)] }
            let split = Set(Dictionary(grouping: routes, by: \.method).filter { $0.value.count > 1 }.keys)
            return [BodyVariant.multipart, .other].map { variant in
                ("\(id)-\(variant.rawValue)", routes.filter { !split.contains($0.method) || $0.bodyVariant == variant })
            }
        }
    }

    /// nginx's variable for a request's ``BodyVariant``.
    public static let bodyVariantVariable = "minihost_body_variant"
    /// What makes `$content_type` multipart for nginx, as ``BodyVariant`` decides.
    public static let bodyVariantRegex = "~*^[ \\t]*multipart/form-data"

    /// A map choosing a refusal's named location by the body's variant, for a
    /// location whose routes answer refusals in different dialects.
    public struct ErrorPageChoice {
        public let variable: String
        public let pages: [(variant: BodyVariant, page: String)]
    }

    /// A named location answering one of nginx's own refusals in a dialect.
    public struct ErrorPage: Hashable {
        public let name: String
        public let status: Int
        public let contentType: String
        /// The body as an nginx double-quoted string's contents.
        public let body: String
        public let retryAfter: Bool
        /// The dialect's headers on every answer (tus: `Tus-Resumable`).
        public let headers: [Header]

        public struct Header: Hashable {
            public let name: String
            public let value: String
        }

        /// What the site template's `error_pages` section takes.
        public var templateValues: [String: Any] {
            ["name": name, "status": status, "content_type": contentType, "body": body, "retry_after": retryAfter,
             "headers": headers.map { ["name": $0.name, "value": $0.value] }]
        }
    }

    public let locations: [Location]
    public let errorPages: [ErrorPage]
    /// Per location: the named error location for each status (or a
    /// variable naming it, from ``errorPageChoices``).
    public let errorTargets: [String: [(status: Int, page: String)]]
    public let errorPageChoices: [ErrorPageChoice]
    /// Zones with their rates.
    public let zoneRates: [(zone: String, rate: String)]
    /// The maps nginx answers public files with.
    public let publicLayout: PublicIndexLayout

    public init(table: RouteTable) throws {
        var byPath: [String: [Route]] = [:]
        var order: [PathPattern] = []
        for route in table.routes {
            if byPath[route.path.text] == nil { order.append(route.path) }
            byPath[route.path.text, default: []].append(route)
        }
        // Regex locations are tried in order: most specific first, as the
        // router prefers, except that locations nginx answers public files
        // from go first. They take the most requests, at nginx's own rate,
        // and some 70 regexes tried before each hit were a twentieth of its
        // time. That is only allowed where no path could match both.
        let isPublic = { (pattern: PathPattern) in byPath[pattern.text]!.contains { $0.publicFile != nil } }
        order.sort { Self.precedence($0).lexicographicallyPrecedes(Self.precedence($1)) }
        let byPrecedence = order
        order = order.filter(isPublic) + order.filter { !isPublic($0) }
        for pattern in order where isPublic(pattern) {
            let passed = byPrecedence.prefix { $0 != pattern }.filter { !isPublic($0) && !$0.isLiteral }
            if let clash = passed.first(where: pattern.mayOverlap) {
                throw NginxPlanError("public-file route \(pattern.text) may match the paths of \(clash.text), which comes first by precedence")
            }
        }
        locations = order.enumerated().map { index, pattern in
            Location(id: "r\(index + 1)", pattern: pattern, routes: byPath[pattern.text]!)
        }
        var rates: [String: String] = [:]
        for route in table.routes where !route.limit.isNone {
            if let existing = rates[route.limit.zone], existing != route.limit.rate {
                throw NginxPlanError("zone \(route.limit.zone) has two rates: \(existing) and \(route.limit.rate)")
            }
            rates[route.limit.zone] = route.limit.rate
        }
        zoneRates = rates.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        var pages: [ErrorPage: Void] = [:]
        var targets: [String: [(Int, String)]] = [:]
        var choices: [ErrorPageChoice] = []
        for location in locations {
            // A worker that is down, restarting or too slow is "unavailable" (503) to clients alike.
            var refusals = [([413], 413), ([429], 429), ([502, 503, 504], 503)]
            if location.loopbackOnly { refusals.append(([403], 403)) }
            let variants: [(BodyVariant?, [Route])] = location.splitsOnBody
                ? zip([BodyVariant.multipart, .other], location.keyedRoutes).map { ($0, $1.routes) }
                : [(nil, location.routes)]
            for (statuses, answer) in refusals {
                var chosen: [(BodyVariant?, String)] = []
                for (variant, routes) in variants {
                    let route = routes.max { $0.body.nginxLimit < $1.body.nginxLimit }!
                    let message = switch answer {
                    case 413: route.body.tooLargeMessage
                    case 429: "Too many requests"
                    case 403: "Forbidden"
                    default: "Service unavailable"
                    }
                    let page = try Self.errorPage(route.dialect, status: answer, message: message)
                    pages[page] = ()
                    chosen.append((variant, page.name))
                }
                var target = chosen[0].1
                if Set(chosen.map(\.1)).count > 1 {
                    target = "$minihost_\(location.id)_error_\(answer)"
                    choices.append(ErrorPageChoice(variable: String(target.dropFirst()),
                                                   pages: chosen.map { ($0.0!, $0.1) }))
                }
                for status in statuses { targets[location.id, default: []].append((status, target)) }
            }
        }
        errorPages = pages.keys.sorted { $0.name < $1.name }
        errorTargets = targets
        errorPageChoices = choices
        publicLayout = PublicIndexLayout(table: table)
        try checkMatching()
    }

    /// nginx picks an exact location, else the first regex that matches: for
    /// an example path of every route that must be the route's own location.
    private func checkMatching() throws {
        for location in locations {
            let path = location.pattern.example()
            let chosen = locations.first { $0.pattern.isLiteral && $0.pattern.text == path }
                ?? locations.first { !$0.pattern.isLiteral && Self.matches($0.pattern.nginxRegex, path) }
            guard chosen?.id == location.id else {
                throw NginxPlanError("nginx would send \(path) to \(chosen?.pattern.text ?? "no location"), not \(location.pattern.text)")
            }
        }
    }

    private static func matches(_ regex: String, _ path: String) -> Bool {
        guard let expression = try? NSRegularExpression(pattern: regex) else { return false }
        return expression.firstMatch(in: path, range: NSRange(path.startIndex..., in: path)) != nil
    }

    /// Literal segments first, constrained parameters before free ones, catch-alls last.
    private static func precedence(_ pattern: PathPattern) -> [Int] {
        pattern.segments.map { segment in
            switch segment {
            case .literal: return 0
            case .parameter(_, let constraint): return constraint == .anySegment ? 2 : 1
            case .catchAll: return 3
            }
        } + [pattern.isLiteral ? 0 : 1]
    }

    static func errorPage(_ dialect: Dialect, status: Int, message: String, code: String? = nil) throws -> ErrorPage {
        let statusValue = HTTPStatus(code: status, reason: "")
        let response = dialect.render(ErrorAnswer(status: statusValue, code: code, message: message))
        guard case .bytes(let bytes) = response.body else { throw NginxPlanError("\(dialect.name) renders no body") }
        let text = String(decoding: bytes, as: UTF8.self)
        guard !text.contains("$") else { throw NginxPlanError("nginx can't return a body with $: \(text)") }
        var quoted = ""
        for character in text {
            switch character {
            case "\\": quoted += "\\\\"
            case "\"": quoted += "\\\""
            case "\n": quoted += "\\n"
            default: quoted.append(character)
            }
        }
        let slug = message.lowercased().filter { $0.isLetter || $0.isNumber }.prefix(24)
        return ErrorPage(name: "@minihost_\(dialect.name)_\(status)_\(slug)", status: status,
                         contentType: response.headers["Content-Type"] ?? "text/plain", body: quoted,
                         retryAfter: status == 429,
                         headers: dialect.headers.map { ErrorPage.Header(name: $0.name, value: $0.value) })
    }

    /// `"r3:POST"`-style keys for each zone's map: the routes whose class
    /// uses the zone, by location and method (HEAD as GET).
    public func limitKeys(zone: String) -> [String] {
        keys { $0.limit.zone == zone }
    }

    /// The same for the per-address connection limit.
    public var connectionKeys: [String] {
        keys { !$0.limit.isNone && $0.limit.connections != nil }
    }

    /// Keys of the routes `selected` picks, a location's whole key where
    /// every route there is picked.
    private func keys(_ selected: (Route) -> Bool) -> [String] {
        var keys: [String] = []
        for location in locations {
            for (key, routes) in location.keyedRoutes {
                let methods = routes.filter { !$0.limit.isNone && selected($0) }.map(\.method)
                if methods.count == routes.count {
                    keys.append("~^\(key):")
                } else {
                    for method in methods {
                        keys.append("\(key):\(method)")
                        if method == "GET" { keys.append("\(key):HEAD") }
                    }
                }
            }
        }
        return keys
    }

    /// The values `minihost.conf.mustache` renders.
    public var templateValues: [String: Any] {
        [
            "zones": zoneRates.map { ["zone": $0.zone, "rate": $0.rate, "keys": limitKeys(zone: $0.zone)] as [String: Any] },
            "connection_keys": connectionKeys,
            "body_variant": locations.contains(where: \.splitsOnBody)
                ? [["variable": Self.bodyVariantVariable, "multipart_regex": Self.bodyVariantRegex]] : [],
            "error_page_choices": errorPageChoices.map { choice in
                ["variable": choice.variable, "variant_variable": Self.bodyVariantVariable,
                 "pages": choice.pages.map { ["variant": $0.variant.rawValue, "page": $0.page] }] as [String: Any]
            },
            "locations": locations.map { location -> [String: Any] in
                [
                    "id": location.id, "key": location.key, "matcher": location.matcher, "name": location.description,
                    "public": publicValues(location, contentOrigin: false),
                    "max_body": String(location.maxBody), "streamed": location.streamed, "large_body": location.largeBody, "loopback_only": location.loopbackOnly,
                    "body_timeout": location.bodyTimeout, "sse": location.streamsResponse,
                    "limits": location.zones.map { ["zone": $0.zone, "burst": $0.burst] },
                    "connections": location.connections.map { ["count": $0] } ?? [],
                    "errors": errorTargets[location.id, default: []].map { ["status": $0.status, "page": $0.page] },
                ]
            },
            "content_locations": locations.filter { $0.routes.contains(where: \.onContentOrigin) }.map { location in
                ["id": location.id, "matcher": location.matcher, "max_body": String(location.maxBody),
                 "name": location.routes.filter(\.onContentOrigin).map(\.name).joined(separator: ", "),
                 "public": publicValues(location, contentOrigin: true),
                 "errors": errorTargets[location.id, default: []].map { ["status": $0.status, "page": $0.page] }] as [String: Any]
            },
            "public_trees": publicLayout.trees.map { tree -> [String: Any] in
                [
                    "tree": tree.kind.rawValue, "key_variable": tree.keyVariable, "keys_file": tree.keysFile,
                    "parameters_variable": tree.parametersVariable, "parameters_file": tree.parametersFile,
                    "codes_variable": tree.codesVariable, "codes_file": tree.codesFile,
                    "slots": tree.slots.indices.map { index in
                        ["variable": tree.dispositionVariable(index), "name": "\(tree.slots[index].route.name) on the \(tree.slots[index].origin) origin",
                         "inline_key": "~^.{\(index)}i", "attachment_key": "~^.{\(index)}a"]
                    },
                ]
            },
            "error_pages": errorPages.map(\.templateValues),
        ]
    }
}

extension NginxPlan {
    /// nginx's variable for the id a public location captures.
    static let publicIdVariable = "minihost_public_id"

    /// For a location nginx may answer from the public tree: the capturing
    /// matcher, the tree, and the variables its headers come from. Empty
    /// (no section) for other locations.
    func publicValues(_ location: Location, contentOrigin: Bool) -> [[String: Any]] {
        guard let route = location.publicRoute, let publicFile = route.publicFile,
              let (parameter, _) = route.publicIdParameter,
              let tree = publicLayout.trees.first(where: { $0.kind == publicFile.tree }),
              let slot = tree.slotIndex(of: route, contentOrigin: contentOrigin) else { return [] }
        let regex = route.path.nginxRegex(capturing: (parameter, Self.publicIdVariable))
        return [[
            "matcher": "~ \"\(regex)\"", "tree": tree.kind.rawValue, "id_variable": Self.publicIdVariable,
            "key_variable": tree.keyVariable, "types_file": tree.typesFile, "parameters_variable": tree.parametersVariable,
            "disposition_variable": tree.dispositionVariable(slot), "cache_control": publicFile.cacheControl,
            "suffix": contentOrigin ? "_content" : "", "open_file_valid": PublicTree.nginxOpenFileValidity,
        ]]
    }
}

/// The table can't be expressed in nginx as it stands.
public struct NginxPlanError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
