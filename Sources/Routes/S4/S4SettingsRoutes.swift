import Foundation
import HTTPCore
import Store

/// s4's settings: the ones that make sense for one server, stored durably
/// (``SettingsStore``), with upstream's names, ranges and answers.
/// `GET /api/settings/s3` describes the storage in use; until minihost can
/// front another backend, `PUT` refuses with 400 `NotSupported`.
struct S4SettingsRoutes: ContextRoutes {
    let context: ServerContext

    init(_ context: ServerContext) { self.context = context }

    /// A whole-number setting: its stored name, JSON field, range and default.
    struct NumberSetting: Sendable {
        let name: String
        let field: String
        let range: ClosedRange<Int>
        let fallback: Int

        static let maxFilesPerPage = NumberSetting(name: "s4.max_files_per_page", field: "maxFilesPerPage",
                                                   range: 10...1000, fallback: 100)
        static let maxConcurrentTransfers = NumberSetting(name: "s4.max_concurrent_transfers",
                                                          field: "maxConcurrentTransfers", range: 1...20, fallback: 2)
    }

    static func register(in table: inout RouteTable, token: Authentication) {
        table.group(S4Routes.dialect, prefix: "/api/settings", auth: token) { settings in
            for (path, setting) in [("/max-files-per-page", NumberSetting.maxFilesPerPage),
                                    ("/max-concurrent-transfers", NumberSetting.maxConcurrentTransfers)] {
                settings.add("GET", path) { try Self($0.server).number(setting) }
                settings.add("PUT", path, body: .json(limit: 16 << 10)) { try Self($0.server).setNumber(setting, $0) }
            }
            settings.add("GET", "/disclaimer") { try Self($0.server).disclaimer() }
            settings.add("PUT", "/disclaimer", body: .json(limit: 16 << 10)) { try Self($0.server).setDisclaimer($0) }
            settings.add("GET", "/s3") { Self($0.server).storage($0) }
            settings.add("PUT", "/s3", body: .json(limit: 64 << 10, optional: true)) { _ in
                throw HTTPErrorResponse(.badRequest, "This server stores objects itself (SQLite + local files); "
                                        + "it can't be pointed at another S3 endpoint yet", code: "NotSupported")
            }
        }
    }

    /// The page size listings default to (also `GET /api/local/files`).
    static func maxFilesPerPage(_ store: MinihostStore) throws -> Int {
        try storedNumber(.maxFilesPerPage, store)
    }

    static func storedNumber(_ setting: NumberSetting, _ store: MinihostStore) throws -> Int {
        guard let text = try store.settings.value(setting.name), let value = Int(text), setting.range.contains(value) else {
            return setting.fallback
        }
        return value
    }

    func number(_ setting: NumberSetting) throws -> Response {
        JSONResponse.make([setting.field: try Self.storedNumber(setting, store)])
    }

    func setNumber(_ setting: NumberSetting, _ route: RouteRequest) throws -> Response {
        let raw = route.json[setting.field]
        guard let number = raw as? NSNumber, !([String: Any].isBoolean(raw as Any)), number.doubleValue.isFinite,
              number.doubleValue == number.doubleValue.rounded(), setting.range.contains(Int(exactly: number.doubleValue) ?? -1) else {
            throw HTTPErrorResponse(.badRequest, "\(setting.field) must be a number between \(setting.range.lowerBound) "
                                    + "and \(setting.range.upperBound)", code: "BadRequest")
        }
        try store.settings.set(setting.name, to: String(Int(number.doubleValue)))
        return JSONResponse.make(["message": "Settings updated successfully", setting.field: Int(number.doubleValue)])
    }

    /// Whether the operator has acknowledged the UI's disclaimer, and when.
    func disclaimer() throws -> Response {
        guard let text = try store.settings.value("s4.disclaimer_accepted_at"), let time = Double(text) else {
            return JSONResponse.make(["accepted": false, "acceptedAt": NSNull()])
        }
        return JSONResponse.make(["accepted": true, "acceptedAt": ISO8601Timestamp.format(Date(timeIntervalSince1970: time))])
    }

    /// `{accepted: true|false}`.
    func setDisclaimer(_ route: RouteRequest) throws -> Response {
        guard let raw = route.json["accepted"], [String: Any].isBoolean(raw), let accepted = raw as? Bool else {
            throw HTTPErrorResponse(.badRequest, "accepted must be true or false", code: "BadRequest")
        }
        try store.settings.set("s4.disclaimer_accepted_at", to: accepted ? String(Date().timeIntervalSince1970) : "")
        return JSONResponse.make(["message": "Settings updated successfully", "accepted": accepted])
    }

    /// `GET /api/settings/s3`: the storage in use, in upstream's shape. No
    /// secret exists to show: objects live in this server's own store.
    func storage(_ route: RouteRequest) -> Response {
        JSONResponse.make(["settings": [
            "accessKeyId": "", "secretAccessKey": "", "region": "local",
            "endpoint": "", "defaultBucket": context.configuration.s4.defaultBucket,
            "backend": "minihost", "description": "Objects are stored by this server (SQLite metadata, content-addressed files)",
            "editable": false,
        ] as [String: Any]])
    }
}
