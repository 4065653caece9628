import ArgumentParser
import Foundation
import Routes

/// `minihost routes`: the declared route table, for operators (what is served,
/// how it is limited) and for the tests that check nginx against it.
struct RoutesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routes", abstract: "List the declared routes with their auth, body limit and rate-limit class.")

    @Flag(help: "One JSON object per route, one per line.") var json = false

    func run() throws {
        let configuration = ServerConfiguration.fromEnvironment(ProcessInfo.processInfo.environment).0
        let table = try RouteTable.standard(configuration)
        // What nginx enforces is the location's limit: routes sharing a path share it.
        let plan = try NginxPlan(table: table)
        let locationLimit = Dictionary(plan.locations.map { ($0.pattern.text, $0.maxBody) }) { first, _ in first }
        for route in table.routes {
            if json {
                let object: [String: Any] = [
                    "method": route.method, "path": route.path.text, "example": route.path.example(),
                    "dialect": route.dialect.name, "auth": route.auth.name, "body": route.body.kind.rawValue,
                    "body_limit": route.body.limit, "nginx_body_limit": locationLimit[route.path.text] ?? route.nginxBodyLimit, "streamed": route.body.streamed,
                    "zone": route.limit.zone, "burst": route.limit.burst, "connections": route.limit.connections ?? 0,
                    "body_variant": route.bodyVariant.rawValue, "content_origin": route.onContentOrigin, "streams_response": route.streamsResponse,
                ]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                let limit = route.limit.isNone ? "no limit" : "\(route.limit.zone) (\(route.limit.rate), burst \(route.limit.burst))"
                print("\(route.method) \(route.path)\t\(route.dialect.name)\t\(route.auth.name)\t\(route.body.kind.rawValue)\t\(limit)")
            }
        }
    }
}
