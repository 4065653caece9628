import Foundation
import HTTPCore
import ServerMetrics
import Store

/// `GET /_minihost/metrics`: Prometheus's text format, for the local
/// machine only (nginx allows only loopback addresses there, and the route
/// checks again). nginx's own counters are next to it at
/// `/_minihost/nginx_status` (`stub_status`, in the nginx template).
struct MetricsRoutes: DialectRoutes {
    static let api = "metrics"

    static func register(in table: inout RouteTable, configuration: ServerConfiguration) {
        table.group(.plainText, auth: .loopback, limit: .none) { group in
            group.add("GET", "/_minihost/metrics") { request in
                let server = request.server
                var sample = MetricsSample()
                if let threads = server.workerThreads.withLock({ $0 }) {
                    (sample.workerThreads, sample.busyThreads) = threads()
                }
                let checks = server.passwordHashing.statistics
                sample.passwordChecksRunning = checks.running
                sample.passwordChecksWaiting = checks.waiting
                sample.passwordChecksWaited = checks.waited
                sample.passwordChecksRefused = checks.refused
                sample.sqliteBusyRetries = server.store.busyRetries
                let store = try server.store.statistics()
                sample.uploads = store.uploads
                sample.uploadBytes = store.uploadBytes
                sample.blobObjects = store.blobObjects
                sample.blobBytes = store.blobBytes
                sample.uploadSessionsOpen = store.uploadSessionsOpen
                sample.maintenance = store.maintenance.map { totals in
                    var removed = ["temporary_files": Int64(totals.removed.temporaryFilesRemoved),
                                   "uploads_ended": Int64(totals.removed.uploadsEnded)]
                    if totals.task == .gc {  // the sweeper removes only temporary files and ended uploads
                        removed["sessions"] = Int64(totals.removed.sessionsExpired)
                        removed["blobs"] = Int64(totals.removed.blobsRemoved)
                        removed["bytes"] = totals.removed.bytesFreed
                        removed["public_links_repaired"] = Int64(totals.removed.publicLinksRepaired)
                    }
                    return MaintenanceSample(task: totals.task.rawValue, runs: totals.runs, removed: removed,
                                             lastRunUnixSeconds: totals.lastRunAt?.timeIntervalSince1970)
                }
                var response = Response(body: .bytes(server.metrics.render(sample)))
                response.headers.set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                response.headers.set("Cache-Control", "no-store")
                return response
            }
        }
    }
}
