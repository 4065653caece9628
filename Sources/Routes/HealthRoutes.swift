import Foundation
import HTTPCore
import Store

/// `GET /api/health`: answers from memory only, so it says the workers are up
/// without touching the database.
struct HealthRoutes: DialectRoutes {
    static let api = "health"

    static func register(in table: inout RouteTable, configuration: ServerConfiguration) {
        let version = configuration.version
        table.group(.json) { group in
            group.add("GET", "/api/health") { _ in
                var response = JSONResponse.make([
                    "status": "ok", "version": version, "timestamp": ISO8601Timestamp.format(Date()),
                ])
                response.headers.set("Cache-Control", "no-store")
                return response
            }
        }
    }
}
