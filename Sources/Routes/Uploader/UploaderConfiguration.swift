import Foundation

/// The uploader dialect's settings.
public struct UploaderConfiguration: Sendable {
    public static let defaultMaxMB = 100

    /// The largest upload (`MINIHOST_UPLOADER_MAX_MB`, default 100 as upstream).
    public var maxUploadBytes: Int64
    /// Whether `POST /api/register` makes accounts (`MINIHOST_UPLOADER_REGISTRATION`:
    /// `open`, the default as upstream, or `closed`: accounts only by `minihost user create`).
    public var registrationOpen: Bool
    /// How long an access token lasts (`MINIHOST_UPLOADER_TOKEN_DAYS`, default 30).
    public var tokenLifetime: TimeInterval
    /// How long a bot's token (`?bot=true`) lasts: six months, as documented.
    public var botTokenLifetime: TimeInterval = 183 * 86_400

    public init(maxUploadBytes: Int64 = Int64(defaultMaxMB) << 20, registrationOpen: Bool = true,
                tokenLifetime: TimeInterval = 30 * 86_400) {
        self.maxUploadBytes = maxUploadBytes
        self.registrationOpen = registrationOpen
        self.tokenLifetime = tokenLifetime
    }

    public var maxUploadMB: Int { Int(maxUploadBytes >> 20) }

    static func read(_ reader: inout EnvironmentReader) -> UploaderConfiguration {
        var configuration = UploaderConfiguration()
        if let megabytes = reader.number("MINIHOST_UPLOADER_MAX_MB", in: 1...16_384, whole: true, fallback: "100") {
            configuration.maxUploadBytes = Int64(megabytes) << 20
        }
        switch reader.environment["MINIHOST_UPLOADER_REGISTRATION"]?.lowercased() {
        case nil, "", "open": break
        case "closed": configuration.registrationOpen = false
        case let other?: reader.warnings.append("MINIHOST_UPLOADER_REGISTRATION=\(other) is not open or closed; using open")
        }
        if let days = reader.number("MINIHOST_UPLOADER_TOKEN_DAYS", in: 0.001...3650, fallback: "30") {
            configuration.tokenLifetime = days * 86_400
        }
        return configuration
    }
}
