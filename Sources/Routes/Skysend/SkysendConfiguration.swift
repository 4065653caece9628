import Foundation

/// The skysend dialect's settings, reflected in `GET /api/config`.
public struct SkysendConfiguration: Sendable {
    /// Allowed `X-Expire-Sec` values (`MINIHOST_SKYSEND_EXPIRE_OPTIONS`).
    public var expireOptions = [300, 3600, 86_400, 604_800]
    /// Allowed `X-Max-Downloads` values (`MINIHOST_SKYSEND_DOWNLOAD_OPTIONS`).
    public var downloadOptions = [1, 2, 3, 4, 5, 10, 20, 50, 100]
    /// Largest upload (`MINIHOST_SKYSEND_MAX_MB`, default 2048 as upstream).
    public var maxUploadBytes: Int64 = 2048 << 20
    /// Notes, as upstream's defaults: expiries, view limits (0 is unlimited), size.
    public var noteExpireOptions = [300, 3600, 86_400, 604_800]
    public var noteViewOptions = [0, 1, 2, 3, 5, 10, 20, 50, 100]
    public var noteMaxBytes = 1 << 20
    /// Failed password checks per resource and address before a lockout, and its length.
    public var passwordAttempts = 10
    public var lockout: TimeInterval = 15 * 60

    public init() {}

    static func read(_ reader: inout EnvironmentReader) -> SkysendConfiguration {
        var configuration = SkysendConfiguration()
        if let options = reader.positiveIntegers("MINIHOST_SKYSEND_EXPIRE_OPTIONS", fallback: "300,3600,86400,604800") {
            configuration.expireOptions = options
        }
        if let options = reader.positiveIntegers("MINIHOST_SKYSEND_DOWNLOAD_OPTIONS", fallback: "1,2,3,4,5,10,20,50,100") {
            configuration.downloadOptions = options
        }
        if let megabytes = reader.number("MINIHOST_SKYSEND_MAX_MB", in: 1...1_048_576, whole: true, fallback: "2048") {
            configuration.maxUploadBytes = Int64(megabytes) << 20
        }
        return configuration
    }
}

extension EnvironmentReader {
    /// A comma-separated list of whole numbers ≥ 1, or nil with a warning.
    mutating func positiveIntegers(_ name: String, fallback: String) -> [Int]? {
        guard let text = environment[name]?.trimmingWhitespace(), !text.isEmpty else { return nil }
        let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.count <= 64, values.allSatisfy({ ($0 ?? 0) >= 1 && ($0 ?? 0) <= 315_360_000 }) else {
            warnings.append("\(name)=\(text) is not a comma-separated list of whole numbers from 1; using \(fallback)")
            return nil
        }
        return values.compactMap { $0 }
    }
}
