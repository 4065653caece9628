import FCGIApp
import Foundation
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
        server = FastCGIServer(
            configuration: .init(address: address, workerCount: workers, fileServing: fileServing,
                                 shutdownGracePeriod: gracePeriod),
            logger: logger, responder: { router.respond(to: $0) })
    }

    /// Starts the pool, the sweeper and the public index writer. Call with
    /// the stop signals blocked.
    func start() throws {
        store.blobs.sweepTemporaryFiles(olderThan: 3600)
        // Links a crash left behind (an unpublish that never committed, a
        // publish whose link was never made) are put right before any request.
        let repaired = try store.reconcilePublicTree()
        if repaired.made + repaired.removed > 0 {
            logger.notice("public tree repaired", metadata: ["made": "\(repaired.made)", "removed": "\(repaired.removed)"])
        }
        try server.start()
        let store = self.store
        Thread.detachNewThread {
            while true {
                Thread.sleep(forTimeInterval: 600)
                store.blobs.sweepTemporaryFiles(olderThan: 3600)
            }
        }
        let index = try PublicIndex(context: context)
        let interval = configuration.publicIndexInterval
        let logger = self.logger
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

    static let defaultWorkers = 128
}
