import FCGIApp
import Foundation
import Logging
import Routes
import Store

/// The worker pool with everything it serves: store, routes, and a sweeper
/// that removes temporary files left by interrupted uploads.
final class WorkerRuntime: Sendable {
    let server: FastCGIServer
    let store: MinihostStore
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
        let router = try context.makeRouter()
        server = FastCGIServer(
            configuration: .init(address: address, workerCount: workers, fileServing: fileServing,
                                 shutdownGracePeriod: gracePeriod),
            logger: logger, responder: { router.respond(to: $0) })
    }

    /// Starts the pool and the sweeper. Call with the stop signals blocked.
    func start() throws {
        store.blobs.sweepTemporaryFiles(olderThan: 3600)
        try server.start()
        let store = self.store
        Thread.detachNewThread {
            while true {
                Thread.sleep(forTimeInterval: 600)
                store.blobs.sweepTemporaryFiles(olderThan: 3600)
            }
        }
    }

    func stop() -> Bool { server.stop() }

    static let defaultWorkers = 128
}
