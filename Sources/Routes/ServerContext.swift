import HTTPCore
import Logging
import OpenSSLCrypto
import ServerMetrics
import Store
import Synchronization

/// What every route shares: the store, the configuration, a logger, and the
/// credential checks that route tables declare (``Authentication``). One
/// instance serves all worker threads.
public final class ServerContext: Sendable {
    public let store: MinihostStore
    public let configuration: ServerConfiguration
    public let logger: Logger
    let operatorCookie: OperatorCookie
    /// scrypt takes 128 MiB and ~0.3 s per hash: two at a time keeps a burst
    /// of logins from exhausting memory, and a bounded queue keeps waiters
    /// from holding every worker thread; nginx rate-limits the rest. Shared by
    /// every password-checking dialect.
    let passwordHashing: ConcurrencyLimiter
    let passwordHasher: Scrypt
    /// Shared by every dialect that checks a username and password.
    let verifiedCredentials: VerifiedCredentialCache
    /// Verified against when the username is unknown, so unknown users and
    /// wrong passwords take the same time.
    let decoyPasswordHash: String
    /// Failed password checks per resource and address (skysend).
    let passwordLockout: PasswordLockout
    /// Event streams open in this process (s4's upload progress).
    let eventStreams = EventStreamSlots(limit: 32)
    /// Request and store metrics (``MetricsRoutes``).
    public let metrics = ServerMetrics()
    /// The worker pool's thread counts (total, busy), set by whoever runs
    /// the pool; the routes can't see it.
    public let workerThreads = Mutex<(@Sendable () -> (total: Int, busy: Int))?>(nil)

    public init(store: MinihostStore, configuration: ServerConfiguration, logger: Logger,
                cookieSigningKey: [UInt8], passwordHasher: Scrypt = .recommended) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        self.passwordHasher = passwordHasher
        passwordHashing = ConcurrencyLimiter(limit: configuration.passwordChecks, maxWaiting: configuration.passwordQueue)
        verifiedCredentials = VerifiedCredentialCache(lifetime: configuration.credentialCacheLifetime)
        decoyPasswordHash = (try? passwordHasher.hash(password: "decoy-password")) ?? ""
        passwordLockout = PasswordLockout(attempts: configuration.skysend.passwordAttempts,
                                          duration: configuration.skysend.lockout)
        operatorCookie = OperatorCookie(signingKey: cookieSigningKey, secure: configuration.secureCookies,
                                        lifetime: configuration.operatorSessionLifetime)
    }

    /// The origin for links the server hands out: `MINIHOST_PUBLIC_ORIGIN`
    /// (or its NEXT_PUBLIC_ twin), else the request's own scheme and host.
    /// A configured origin always wins over `Host`, which the client chose.
    func origin(for request: Request) -> String {
        configuration.publicOrigin ?? "\(request.scheme)://\(request.host ?? "localhost")"
    }

    /// The origin for links to stored bytes (public cache URLs, raw and
    /// download links): the content origin when one is configured.
    func contentOrigin(for request: Request) -> String {
        configuration.contentOrigin ?? origin(for: request)
    }

    /// The router over every dialect's routes (``RouteTable/standard(_:)``).
    /// Throws ``RouteConflict`` if two routes could answer the same request.
    public func makeRouter() throws -> Router {
        Router(table: try RouteTable.standard(configuration), server: self,
               cors: CORSPolicy(publicOrigin: configuration.publicOrigin, extraOrigins: configuration.extraCORSOrigins),
               logger: logger)
    }
}
