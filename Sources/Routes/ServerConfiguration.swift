import Foundation

/// Everything the routes need to know about how the server is set up.
/// Built from the environment (see ``fromEnvironment(_:)``) or directly in tests.
public struct ServerConfiguration: Sendable {
    public static let defaultMaxMB = 50
    public static let maxMBCap = 500

    /// The largest upload accepted, in bytes (`MINIHOST_MAX_MB`, default 50, capped at 500).
    public var maxUploadBytes: Int64
    /// Origins allowed to call the API from a browser, besides the built-in ones.
    public var extraCORSOrigins: [String]
    /// Origin used in `cache_url` (`MINIHOST_PUBLIC_ORIGIN`, else
    /// `NEXT_PUBLIC_MINIHOST_PUBLIC_ORIGIN`); nil means the request's own host.
    public var publicOrigin: String?
    /// Echo audit results in an `X-Minihost-Audit` response header.
    public var auditEcho: Bool
    /// Mark the operator cookie `Secure`. Off only for plain-HTTP loopback development.
    public var secureCookies: Bool
    /// Uploads not marked handled within this many seconds are purged by
    /// `admin-purge-unhandled` (`MINIHOST_UNHANDLED_CUTOFF_HOURS`, default 24).
    public var unhandledCutoff: TimeInterval
    /// The largest file a resumable (chunked) upload may declare
    /// (`MINIHOST_MAX_CHUNKED_MB`, default 4096).
    public var maxChunkedUploadBytes: Int64 = 4096 << 20
    /// The largest single chunk (`MINIHOST_MAX_CHUNK_MB`, default 100); nginx
    /// must allow it on the chunk route.
    public var maxChunkBytes: Int64 = 100 << 20
    /// How long an unfinished resumable upload is kept (`MINIHOST_SESSION_HOURS`, default 24).
    public var sessionLifetime: TimeInterval = 24 * 3600
    /// How long a verified username + password skips scrypt on later requests
    /// (`MINIHOST_CREDENTIAL_CACHE_SECONDS`, default 60; 0 turns it off).
    public var credentialCacheLifetime: TimeInterval = 60
    /// How long an operator session lasts.
    public var operatorSessionLifetime: TimeInterval
    public var version: String

    public init(maxUploadBytes: Int64 = Int64(defaultMaxMB) << 20, extraCORSOrigins: [String] = [],
                publicOrigin: String? = nil, auditEcho: Bool = false, secureCookies: Bool = true,
                unhandledCutoff: TimeInterval = 24 * 3600, operatorSessionLifetime: TimeInterval = 12 * 3600,
                version: String = MinihostVersion.current) {
        self.maxUploadBytes = maxUploadBytes
        self.extraCORSOrigins = extraCORSOrigins
        self.publicOrigin = publicOrigin
        self.auditEcho = auditEcho
        self.secureCookies = secureCookies
        self.unhandledCutoff = unhandledCutoff
        self.operatorSessionLifetime = operatorSessionLifetime
        self.version = version
    }

    /// Reads the `MINIHOST_*` variables. Values that don't parse fall back to
    /// the default rather than stopping the server; `warnings` says which.
    public static func fromEnvironment(_ environment: [String: String],
                                       secureCookies: Bool = true) -> (ServerConfiguration, warnings: [String]) {
        var warnings: [String] = []
        var configuration = ServerConfiguration(secureCookies: secureCookies)
        if let text = environment["MINIHOST_MAX_MB"], !text.isEmpty {
            if let megabytes = Int(text), megabytes > 0 {
                if megabytes > maxMBCap { warnings.append("MINIHOST_MAX_MB=\(text) is above the cap; using \(maxMBCap)") }
                configuration.maxUploadBytes = Int64(min(megabytes, maxMBCap)) << 20
            } else {
                warnings.append("MINIHOST_MAX_MB=\(text) is not a positive whole number; using \(defaultMaxMB)")
            }
        }
        configuration.extraCORSOrigins = (environment["MINIHOST_CORS_ORIGINS"] ?? "")
            .split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
        let origin = [environment["MINIHOST_PUBLIC_ORIGIN"], environment["NEXT_PUBLIC_MINIHOST_PUBLIC_ORIGIN"]]
            .compactMap { $0?.trimmingWhitespace() }.first { !$0.isEmpty }
        configuration.publicOrigin = origin.map { var text = $0; while text.hasSuffix("/") { text.removeLast() }; return text }
        configuration.auditEcho = ["1", "true", "yes", "on"].contains((environment["MINIHOST_AUDIT_ECHO"] ?? "").lowercased())
        if let text = environment["MINIHOST_UNHANDLED_CUTOFF_HOURS"], !text.isEmpty {
            if let hours = Double(text), hours >= 0 {
                configuration.unhandledCutoff = hours * 3600
            } else {
                warnings.append("MINIHOST_UNHANDLED_CUTOFF_HOURS=\(text) is not a number of hours; using 24")
            }
        }
        if let text = environment["MINIHOST_CREDENTIAL_CACHE_SECONDS"], !text.isEmpty {
            if let seconds = Double(text), seconds >= 0 {
                configuration.credentialCacheLifetime = seconds
            } else {
                warnings.append("MINIHOST_CREDENTIAL_CACHE_SECONDS=\(text) is not a number of seconds; using 60")
            }
        }
        for (name, apply) in [
            ("MINIHOST_MAX_CHUNKED_MB", { (value: Double) in configuration.maxChunkedUploadBytes = Int64(value) << 20 }),
            ("MINIHOST_MAX_CHUNK_MB", { (value: Double) in configuration.maxChunkBytes = Int64(value) << 20 }),
            ("MINIHOST_SESSION_HOURS", { (value: Double) in configuration.sessionLifetime = value * 3600 }),
        ] {
            guard let text = environment[name], !text.isEmpty else { continue }
            if let value = Double(text), value > 0 { apply(value) } else { warnings.append("\(name)=\(text) is not a positive number; ignored") }
        }
        return (configuration, warnings)
    }

    public var maxUploadMB: Int { Int(maxUploadBytes >> 20) }
}

public enum MinihostVersion {
    public static let current = "0.1.0"
}
