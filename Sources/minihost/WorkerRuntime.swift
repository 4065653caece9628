import FCGIApp
import Foundation
import HTTPCore
import Logging
import Routes
import Store

/// The worker pool with everything it serves: store, routes, a sweeper that
/// removes temporary files left by interrupted uploads, and the writer of
/// nginx's index of public files.
final class WorkerRuntime: Sendable {
    let server: FastCGIServer
    let store: MinihostStore
    let context: ServerContext
    let configuration: ServerConfiguration
    let logger: Logger
    private let memory = IdleMemoryRelease()

    init(data: DataDirectory, address: ListenAddress, workers: Int, secureCookies: Bool, gracePeriod: Double = 30,
         fileServing: FastCGIServer.FileServing, logger: Logger) throws {
        self.logger = logger
        let (configuration, warnings) = ServerConfiguration.fromEnvironment(ProcessInfo.processInfo.environment,
                                                                            secureCookies: secureCookies)
        for warning in warnings { logger.warning("\(warning)") }
        self.configuration = configuration
        store = try MinihostStore(directory: data, configuration: configuration.storeConfiguration)
        let context = ServerContext(store: store, configuration: configuration, logger: logger,
                                    cookieSigningKey: try data.loadOrCreateSecretKey())
        self.context = context
        let router = try context.makeRouter()
        let metrics = context.metrics
        let requestLogger = logger
        let memory = self.memory
        server = FastCGIServer(
            configuration: .init(address: address, workerCount: workers, fileServing: fileServing,
                                 shutdownGracePeriod: gracePeriod),
            logger: logger,
            makeObserver: {
                let recorder = metrics.recorder()
                return { request, response, outcome in
                    recorder.observe(method: request.method, answeredBy: response.answeredBy,
                                     status: response.status.code, duration: outcome.duration,
                                     bytesReceived: outcome.bytesReceived, bytesSent: outcome.bytesSent)
                    Self.logRequest(request, response, outcome, requestLogger)
                    memory.requestFinished()
                }
            },
            responder: { request in
                RequestId.$current.withValue(request.requestId) { router.respond(to: request) }
            })
        let server = self.server
        context.workerThreads.withLock { $0 = { (workers, server.busyThreads) } }
    }

    /// One line per request, with what an operator greps for. Never headers,
    /// query strings or bodies: those carry credentials.
    static func logRequest(_ request: Request, _ response: Response, _ outcome: RequestOutcome, _ logger: Logger) {
        guard logger.logLevel <= .info else { return }
        let milliseconds = Double(outcome.duration.components.seconds) * 1000
            + Double(outcome.duration.components.attoseconds) / 1e15
        logger.info("request", metadata: [
            "request_id": "\(request.requestId)", "method": "\(request.method)",
            "route": "\(response.answeredBy?.route ?? "unmatched")", "dialect": "\(response.answeredBy?.dialect ?? "none")",
            "status": "\(response.status.code)", "bytes_in": "\(outcome.bytesReceived)", "bytes_out": "\(outcome.bytesSent)",
            "duration_ms": "\((milliseconds * 1000).rounded() / 1000)", "client": "\(request.remoteAddress)",
        ])
    }

    /// Starts the pool, the sweeper and the public index writer. Call with
    /// the stop signals blocked.
    func start() throws {
        Self.sweep(store, logger)
        // Links a crash left behind (an unpublish that never committed, a
        // publish whose link was never made) are put right before any request.
        let repaired = try store.reconcilePublicTree()
        if repaired.made + repaired.removed > 0 {
            logger.notice("public tree repaired", metadata: ["made": "\(repaired.made)", "removed": "\(repaired.removed)"])
        }
        try server.start()
        let store = self.store
        memory.start { store.releaseIdleMemory() }
        let logger = self.logger
        Thread.detachNewThread {
            while true {
                Thread.sleep(forTimeInterval: 600)
                Self.sweep(store, logger)
            }
        }
        let index = try PublicIndex(context: context)
        let interval = configuration.publicIndexInterval
        nonisolated(unsafe) let owned = index  // used by this one thread only
        Thread.detachNewThread {
            while true {
                do {
                    try owned.refresh()
                } catch {
                    logger.error("public index not written; workers serve public files meanwhile", metadata: ["error": "\(error)"])
                }
                Thread.sleep(forTimeInterval: interval)
            }
        }
    }

    func stop() -> Bool { server.stop() }

    /// Removes temporary files interrupted uploads left and uploads that
    /// ended (expired, or out of downloads), and counts the run.
    static func sweep(_ store: MinihostStore, _ logger: Logger) {
        let removed = store.blobs.sweepTemporaryFiles(olderThan: 3600)
        var ended = 0
        do {
            ended = try store.purgeEnded()
        } catch {
            logger.warning("ended uploads not purged", metadata: ["error": "\(error)"])
        }
        do {
            try store.recordMaintenance(.sweeper, GarbageReport(temporaryFilesRemoved: removed, uploadsEnded: ended))
        } catch {
            logger.warning("sweeper run not recorded", metadata: ["error": "\(error)"])
        }
    }

    static let defaultWorkers = 128
}
