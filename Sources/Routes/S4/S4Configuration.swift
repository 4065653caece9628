import Foundation
import Store

/// The s4 dialect's settings (`MINIHOST_S4_*`, `MINIHOST_LOCAL_LOCATIONS`).
public struct S4Configuration: Sendable {
    /// Whether every s4 route but login needs an operator's token. Only
    /// `MINIHOST_S4_AUTH=off` turns it off (for loopback development), and
    /// `minihost up` says so loudly.
    public var authEnabled = true
    /// Largest object upload (`MINIHOST_S4_MAX_MB`, default 5120: S3's
    /// largest single PUT).
    public var maxUploadBytes: Int64 = 5120 << 20
    /// The bucket a UI opens first (`MINIHOST_S4_DEFAULT_BUCKET`), or "".
    public var defaultBucket = ""
    /// How long a login lasts (upstream's 8 hours; `MINIHOST_S4_SESSION_HOURS`).
    public var sessionLifetime: TimeInterval = 8 * 3600
    /// Directories served as local storage locations (`MINIHOST_LOCAL_LOCATIONS`,
    /// `name=/path,…`), in the order given.
    public var localLocations: [LocalRoot] = []
    /// Largest upload into a local location (`MINIHOST_LOCAL_MAX_MB`, default 5120).
    public var maxLocalUploadBytes: Int64 = 5120 << 20

    public init() {}

    /// Location ids: what nginx's internal location and the route's parameter take.
    static let locationIdCharacters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

    static func read(_ reader: inout EnvironmentReader) -> S4Configuration {
        var configuration = S4Configuration()
        switch reader.environment["MINIHOST_S4_AUTH"]?.lowercased().trimmingWhitespace() {
        case nil, "", "on": break
        case "off": configuration.authEnabled = false
        case let other?: reader.warnings.append("MINIHOST_S4_AUTH=\(other) is not on or off; auth stays on")
        }
        if let megabytes = reader.number("MINIHOST_S4_MAX_MB", in: 1...1_048_576, whole: true, fallback: "5120") {
            configuration.maxUploadBytes = Int64(megabytes) << 20
        }
        if let megabytes = reader.number("MINIHOST_LOCAL_MAX_MB", in: 1...1_048_576, whole: true, fallback: "5120") {
            configuration.maxLocalUploadBytes = Int64(megabytes) << 20
        }
        if let hours = reader.number("MINIHOST_S4_SESSION_HOURS", in: 0.001...720, fallback: "8") {
            configuration.sessionLifetime = hours * 3600
        }
        if let bucket = reader.environment["MINIHOST_S4_DEFAULT_BUCKET"]?.trimmingWhitespace(), !bucket.isEmpty {
            configuration.defaultBucket = bucket
        }
        configuration.localLocations = parseLocations(reader.environment["MINIHOST_LOCAL_LOCATIONS"] ?? "",
                                                      warnings: &reader.warnings)
        return configuration
    }

    /// `name=/absolute/path` pairs separated by commas. A name is 1-64 of
    /// `A-Z a-z 0-9 _ -`; a path must be absolute and an existing directory.
    static func parseLocations(_ text: String, warnings: inout [String]) -> [LocalRoot] {
        var locations: [LocalRoot] = []
        for entry in text.split(separator: ",") {
            let parts = entry.split(separator: "=", maxSplits: 1).map { String($0).trimmingWhitespace() }
            guard parts.count == 2, (1...64).contains(parts[0].utf8.count),
                  parts[0].allSatisfy({ locationIdCharacters.contains($0) }), parts[1].hasPrefix("/") else {
                warnings.append("MINIHOST_LOCAL_LOCATIONS entry '\(entry)' is not name=/absolute/path; skipped")
                continue
            }
            // The path goes into nginx's config as a quoted string.
            guard !parts[1].unicodeScalars.contains(where: { "\"\\$;{}".unicodeScalars.contains($0) || $0.value < 0x20 }) else {
                warnings.append("MINIHOST_LOCAL_LOCATIONS path for \(parts[0]) has characters nginx can't take (\" \\ $ ; { } or controls); skipped")
                continue
            }
            guard !locations.contains(where: { $0.id == parts[0] }) else {
                warnings.append("MINIHOST_LOCAL_LOCATIONS names \(parts[0]) twice; the first is kept")
                continue
            }
            var path = parts[1]
            while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
            var isDirectory: ObjCBool = false
            if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) || !isDirectory.boolValue {
                warnings.append("MINIHOST_LOCAL_LOCATIONS: \(path) is not a directory (location \(parts[0]) answers 503 until it is)")
            }
            locations.append(LocalRoot(id: parts[0], path: path))
        }
        return locations
    }
}
