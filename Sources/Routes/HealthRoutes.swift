import Foundation
import HTTPCore
import Store

/// `GET /api/health`: answers from memory only, so it says the workers are up
/// without touching the database.
struct HealthRoutes {
    let context: ServerContext

    func register(in builder: inout RouterBuilder) {
        let version = context.configuration.version
        builder.add("GET", "/api/health") { _, _ in
            var response = JSONResponse.make([
                "status": "ok", "version": version, "timestamp": ISO8601Timestamp.format(Date()),
            ])
            response.headers.set("Cache-Control", "no-store")
            return response
        }
    }
}
