import Foundation
import Store

/// Everything the routes need to know about how the server is set up.
/// Built from the environment (see ``fromEnvironment(_:secureCookies:)``) or
/// directly in tests.
public struct ServerConfiguration: Sendable {
    public static let defaultMaxMB = 50
    public static let maxMBCap = 500

    /// The largest upload accepted, in bytes (`MINIHOST_MAX_MB`, default 50, capped at 500).
    public var maxUploadBytes: Int64
    /// Origins allowed to call the API from a browser, besides the built-in ones.
    public var extraCORSOrigins: [String]
    /// Origin used in links the server hands out (`MINIHOST_PUBLIC_ORIGIN`,
    /// else `NEXT_PUBLIC_MINIHOST_PUBLIC_ORIGIN`); nil means the request's
    /// own host, which a client controls: set it in production.
    public var publicOrigin: String?
    /// A separate origin for stored bytes (`MINIHOST_CONTENT_ORIGIN`), like a
    /// user-content domain: public and raw links point there, and any type
    /// may be shown inline there. nil serves them from ``publicOrigin``.
    public var contentOrigin: String?
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
    /// Password hashes computed at once (`MINIHOST_PASSWORD_CHECKS`, default 2;
    /// 128 MiB each) and requests that may wait for one (`MINIHOST_PASSWORD_QUEUE`,
    /// default 16). Past the queue a request gets 503 at once.
    public var passwordChecks = 2
    public var passwordQueue = 16
    /// The store's bounds (`MINIHOST_MAX_CHUNKS`: chunks per resumable upload)
    /// and commit durability (`MINIHOST_SQLITE_SYNCHRONOUS`: `full`, or
    /// `normal` to measure what full costs; never in production).
    public var storeConfiguration = StoreConfiguration()
    /// How long an operator session lasts (`MINIHOST_OPERATOR_SESSION_HOURS`, default 12).
    public var operatorSessionLifetime: TimeInterval
    /// How often a worker looks whether nginx's index of public files needs
    /// rewriting (`MINIHOST_PUBLIC_INDEX_SECONDS`, default 10). Each new index
    /// costs an nginx reload; until it lands a worker serves new public files.
    public var publicIndexInterval: TimeInterval = 10
    /// The uploader dialect's settings (`MINIHOST_UPLOADER_*`).
    public var uploader = UploaderConfiguration()
    /// The skysend dialect's settings (`MINIHOST_SKYSEND_*`).
    public var skysend = SkysendConfiguration()
    /// The s4 dialect's settings (`MINIHOST_S4_*`, `MINIHOST_LOCAL_LOCATIONS`).
    public var s4 = S4Configuration()
    public var version: String

    public init(maxUploadBytes: Int64 = Int64(defaultMaxMB) << 20, extraCORSOrigins: [String] = [],
                publicOrigin: String? = nil, contentOrigin: String? = nil, auditEcho: Bool = false,
                secureCookies: Bool = true, unhandledCutoff: TimeInterval = 24 * 3600,
                operatorSessionLifetime: TimeInterval = 12 * 3600, version: String = MinihostVersion.current) {
        self.maxUploadBytes = maxUploadBytes
        self.extraCORSOrigins = extraCORSOrigins
        self.publicOrigin = publicOrigin
        self.contentOrigin = contentOrigin
        self.auditEcho = auditEcho
        self.secureCookies = secureCookies
        self.unhandledCutoff = unhandledCutoff
        self.operatorSessionLifetime = operatorSessionLifetime
        self.version = version
    }

    /// The largest `olderThanHours` (or any other hour count) accepted: 100 years.
    public static let maxHours: Double = 876_000

    /// Reads the `MINIHOST_*` variables. Values that don't parse or are out
    /// of range fall back to the default rather than stopping the server (or
    /// trapping in a conversion); `warnings` says which.
    public static func fromEnvironment(_ environment: [String: String],
                                       secureCookies: Bool = true) -> (ServerConfiguration, warnings: [String]) {
        var reader = EnvironmentReader(environment: environment)
        var configuration = ServerConfiguration(secureCookies: secureCookies)
        if let megabytes = reader.number("MINIHOST_MAX_MB", in: 1...Double(Int32.max), whole: true,
                                         fallback: "\(defaultMaxMB)") {
            if megabytes > Double(maxMBCap) { reader.warnings.append("MINIHOST_MAX_MB=\(Int(megabytes)) is above the cap; using \(maxMBCap)") }
            configuration.maxUploadBytes = Int64(min(megabytes, Double(maxMBCap))) << 20
        }
        configuration.extraCORSOrigins = (environment["MINIHOST_CORS_ORIGINS"] ?? "")
            .split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
        configuration.publicOrigin = reader.origin("MINIHOST_PUBLIC_ORIGIN") ?? reader.origin("NEXT_PUBLIC_MINIHOST_PUBLIC_ORIGIN")
        configuration.contentOrigin = reader.origin("MINIHOST_CONTENT_ORIGIN")
        if let content = configuration.contentOrigin, content == configuration.publicOrigin {
            reader.warnings.append("MINIHOST_CONTENT_ORIGIN is the public origin; it must be a separate site to protect it. Ignored")
            configuration.contentOrigin = nil
        }
        configuration.auditEcho = FormFlag.isTrue(environment["MINIHOST_AUDIT_ECHO"])
        if let hours = reader.number("MINIHOST_UNHANDLED_CUTOFF_HOURS", in: 0...maxHours, fallback: "24") {
            configuration.unhandledCutoff = hours * 3600
        }
        if let seconds = reader.number("MINIHOST_CREDENTIAL_CACHE_SECONDS", in: 0...86_400, fallback: "60") {
            configuration.credentialCacheLifetime = seconds
        }
        if let megabytes = reader.number("MINIHOST_MAX_CHUNKED_MB", in: 1...Double(1 << 24), whole: true, fallback: "4096") {
            configuration.maxChunkedUploadBytes = Int64(megabytes) << 20
        }
        if let megabytes = reader.number("MINIHOST_MAX_CHUNK_MB", in: 1...4096, whole: true, fallback: "100") {
            configuration.maxChunkBytes = Int64(megabytes) << 20
        }
        if let hours = reader.number("MINIHOST_SESSION_HOURS", in: 0.001...8760, fallback: "24") {
            configuration.sessionLifetime = hours * 3600
        }
        switch environment["MINIHOST_SQLITE_SYNCHRONOUS"]?.lowercased() {
        case nil, "", "full": break
        case "normal":
            configuration.storeConfiguration.synchronousCommits = false
            reader.warnings.append("MINIHOST_SQLITE_SYNCHRONOUS=normal: a power cut may lose acknowledged uploads")
        case let other?:
            reader.warnings.append("MINIHOST_SQLITE_SYNCHRONOUS=\(other) is not full or normal; using full")
        }
        if let hours = reader.number("MINIHOST_OPERATOR_SESSION_HOURS", in: 0.001...720, fallback: "12") {
            configuration.operatorSessionLifetime = hours * 3600
        }
        if let count = reader.number("MINIHOST_MAX_CHUNKS", in: 1...1_000_000, whole: true, fallback: "10000") {
            configuration.storeConfiguration.maxChunksPerSession = Int64(count)
        }
        if let count = reader.number("MINIHOST_PASSWORD_CHECKS", in: 1...64, whole: true, fallback: "2") {
            configuration.passwordChecks = Int(count)
        }
        if let count = reader.number("MINIHOST_PASSWORD_QUEUE", in: 0...4096, whole: true, fallback: "16") {
            configuration.passwordQueue = Int(count)
        }
        if let seconds = reader.number("MINIHOST_PUBLIC_INDEX_SECONDS", in: 0.1...3600, fallback: "10") {
            configuration.publicIndexInterval = seconds
        }
        configuration.uploader = UploaderConfiguration.read(&reader)
        configuration.skysend = SkysendConfiguration.read(&reader)
        configuration.s4 = S4Configuration.read(&reader)
        return (configuration, reader.warnings)
    }

    public var maxUploadMB: Int { Int(maxUploadBytes >> 20) }
}

/// Reads typed, range-checked values from the environment, collecting a
/// warning for each one it can't use.
struct EnvironmentReader {
    let environment: [String: String]
    var warnings: [String] = []

    /// The value of `name` if set, a finite number in `range` (and whole if
    /// asked); nil, with a warning naming `fallback`, otherwise.
    mutating func number(_ name: String, in range: ClosedRange<Double>, whole: Bool = false,
                         fallback: String) -> Double? {
        guard let text = environment[name]?.trimmingWhitespace(), !text.isEmpty else { return nil }
        guard let value = Double(text), value.isFinite, range.contains(value), !whole || value == value.rounded() else {
            let kind = whole ? "a whole number" : "a number"
            warnings.append("\(name)=\(text) is not \(kind) from \(range.lowerBound.compact) to \(range.upperBound.compact); using \(fallback)")
            return nil
        }
        return value
    }

    /// `scheme://host[:port]` with nothing after it, trailing slashes dropped.
    mutating func origin(_ name: String) -> String? {
        guard var text = environment[name]?.trimmingWhitespace(), !text.isEmpty else { return nil }
        while text.hasSuffix("/") { text.removeLast() }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              ["http", "https"].contains(scheme), let host = components.host, !host.isEmpty,
              components.path.isEmpty, components.query == nil, components.fragment == nil,
              components.user == nil, components.password == nil else {
            warnings.append("\(name)=\(text) is not an origin like https://files.example.com; ignored")
            return nil
        }
        return text
    }
}

extension Double {
    /// `24` rather than `24.0` in messages.
    var compact: String { self == rounded() && abs(self) < 1e15 ? String(Int64(self)) : String(self) }
}

public enum MinihostVersion {
    public static let current = "0.1.0"
}
