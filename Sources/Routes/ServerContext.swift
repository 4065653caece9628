import HTTPCore
import Logging
import OpenSSLCrypto
import Store

/// What every route shares: the store, the configuration and a logger.
/// One instance serves all worker threads.
public final class ServerContext: Sendable {
    public let store: MinihostStore
    public let configuration: ServerConfiguration
    public let logger: Logger
    let operatorCookie: OperatorCookie
    /// scrypt takes 128 MiB and ~0.3 s per hash: two at a time keeps a burst
    /// of logins from exhausting memory; nginx rate-limits the rest.
    let passwordHashing = ConcurrencyLimiter(limit: 2)
    let passwordHasher: Scrypt
    let verifiedCredentials: VerifiedCredentialCache
    /// Verified against when the username is unknown, so unknown users and
    /// wrong passwords take the same time.
    let decoyPasswordHash: String

    public init(store: MinihostStore, configuration: ServerConfiguration, logger: Logger,
                cookieSigningKey: [UInt8], passwordHasher: Scrypt = .recommended) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        self.passwordHasher = passwordHasher
        verifiedCredentials = VerifiedCredentialCache(lifetime: configuration.credentialCacheLifetime)
        decoyPasswordHash = (try? passwordHasher.hash(password: "decoy-password")) ?? ""
        operatorCookie = OperatorCookie(signingKey: cookieSigningKey, secure: configuration.secureCookies,
                                        lifetime: configuration.operatorSessionLifetime)
    }

    /// The origin for links the server hands out: `MINIHOST_PUBLIC_ORIGIN`
    /// (or its NEXT_PUBLIC_ twin), else the request's own scheme and host.
    func origin(for request: Request) -> String {
        configuration.publicOrigin ?? "\(request.scheme)://\(request.host ?? "localhost")"
    }

    /// The router with every dialect's routes.
    public func makeRouter() -> Router {
        var builder = RouterBuilder(cors: CORSPolicy(extraOrigins: configuration.extraCORSOrigins), logger: logger)
        HealthRoutes(context: self).register(in: &builder)
        MinihostRoutes(context: self).register(in: &builder)
        PlainRoutes(context: self).register(in: &builder)
        return builder.build()
    }
}
