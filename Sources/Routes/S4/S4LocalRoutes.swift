import Foundation
import HTTPCore
import Store

/// s4's local storage locations: directories named in
/// `MINIHOST_LOCAL_LOCATIONS`, browsed, written and served beneath their
/// root only (``LocalRoot`` walks every path without following a symlink;
/// nginx serves downloads from an internal location per root with
/// `disable_symlinks on`). Paths travel base64-encoded, like keys.
public struct S4LocalRoutes {
    let context: ServerContext

    init(_ context: ServerContext) { self.context = context }

    var configuration: S4Configuration { context.configuration.s4 }

    /// The internal nginx location a root's files are served from.
    static func accelPrefix(_ id: String) -> String { "/_local/\(id)/" }

    static let locationId = ParameterConstraint.characters(
        S4Configuration.locationIdCharacters, count: 1...64, regexClass: "A-Za-z0-9_-", example: "local-0")

    static func register(in table: inout RouteTable, token: Authentication, configuration: S4Configuration) {
        table.group(S4Routes.dialect, prefix: "/api/local", auth: token) { local in
            let location = ["location": locationId]
            local.add("GET", "/locations") { Self($0.server).locations($0) }
            local.add("GET", "/files/:location", constraints: location) { try Self($0.server).list($0) }
            local.add("GET", "/files/:location/", constraints: location) { try Self($0.server).list($0) }
            local.add("GET", "/files/:location/*path", constraints: location) { try Self($0.server).list($0) }
            let maxUpload = configuration.maxLocalUploadBytes
            // Upstream's 20 uploads a minute per address, as nginx's zone for them.
            local.add("POST", "/upload/:location/*path", constraints: location,
                      body: .multipart(limit: maxUpload, streamed: true, tooLarge: "File exceeds the maximum of \(maxUpload) bytes"),
                      limit: RateLimit(zone: "local_upload", rate: "20r/m", burst: 20, connections: 16)) {
                try Self($0.server).upload($0)
            }
            local.add("GET", "/download/:location/*path", constraints: location) { try Self($0.server).download($0) }
            local.add("DELETE", "/:location/*path", constraints: location) { try Self($0.server).delete($0) }
            local.add("GET", "/view/:location/*path", constraints: location) { try Self($0.server).view($0) }
            local.add("POST", "/create-directory/:location/*path", constraints: location) {
                try Self($0.server).createDirectory($0)
            }
        }
    }

    /// The internal nginx locations local downloads are served from, for
    /// the site template: each root, and nginx's own refusals there in the
    /// s4 dialect (403 for a symlink `disable_symlinks` refused, 404 for a
    /// file gone since the worker looked), with the named locations they use.
    public static func nginxValues(_ configuration: S4Configuration) throws
        -> (locations: [[String: Any]], errorPages: [NginxPlan.ErrorPage]) {
        let forbidden = try NginxPlan.errorPage(S4Routes.dialect, status: 403, message: "Path leaves the location",
                                                code: "AccessDenied")
        let missing = try NginxPlan.errorPage(S4Routes.dialect, status: 404, message: "No such file or directory",
                                              code: "NotFound")
        let locations = configuration.localLocations.map { root -> [String: Any] in
            ["id": root.id, "root": root.path, "prefix": accelPrefix(root.id),
             "errors": [["status": 403, "page": forbidden.name], ["status": 404, "page": missing.name]]]
        }
        return (locations, locations.isEmpty ? [] : [forbidden, missing])
    }

    /// `GET /api/local/locations`.
    func locations(_ route: RouteRequest) -> Response {
        JSONResponse.make(["locations": configuration.localLocations.map { root -> [String: Any] in
            var isDirectory: ObjCBool = false
            let available = FileManager.default.fileExists(atPath: root.path, isDirectory: &isDirectory) && isDirectory.boolValue
            return ["id": root.id, "name": root.id, "path": root.path, "type": "local", "available": available]
        }])
    }

    /// `GET /api/local/files/:location[/:b64path]`: `files` and
    /// `directories`, by name; `limit` (default the max-files-per-page
    /// setting) and `offset` page through large directories.
    func list(_ route: RouteRequest) throws -> Response {
        let (root, components, _) = try target(route, allowRoot: true)
        let query = route.request.query
        let limit = try Self.number(query["limit"], "limit", in: 1...10_000)
            ?? (try S4SettingsRoutes.maxFilesPerPage(context.store))
        let offset = try Self.number(query["offset"], "offset", in: 0...Int.max) ?? 0
        let entries = try mapped { try root.list(components) }
        let page = entries.dropFirst(offset).prefix(limit)
        return JSONResponse.make([
            "files": page.filter { $0.kind == .file }.map(Self.json),
            "directories": page.filter { $0.kind == .directory }.map(Self.json),
            "totalCount": entries.count, "offset": offset, "limit": limit,
        ])
    }

    /// `POST /api/local/upload/:location/:b64path`: multipart field `file`,
    /// written beside the target and renamed over it once on disk. A path
    /// naming an existing directory (or ending in `/`) takes the part's file name.
    func upload(_ route: RouteRequest) throws -> Response {
        let (root, requested, endsInSlash) = try target(route, allowRoot: true)
        var components = requested
        let intoDirectory = endsInSlash || components.isEmpty
            || (try? root.entry(components))?.kind == .directory
        let maxBytes = configuration.maxLocalUploadBytes
        let part = try FileUploadReceiver(maxBytes: maxBytes).receive(
            route.request, tooLarge: HTTPErrorResponse(.payloadTooLarge, "File exceeds the maximum of \(maxBytes) bytes",
                                                       code: "EntityTooLarge")) { headers, _, _ in
            if intoDirectory {
                let name = DisplayName.sanitize(headers.fileName)
                guard name != DisplayName.fallback || headers.fileName != nil else {
                    throw HTTPErrorResponse(.badRequest, "The file part has no file name", code: "BadRequest")
                }
                components.append(name)
            }
            return try mapped { try root.makeWriter(components) }
        }
        try mapped { try part.sink.finish() }
        let path = components.joined(separator: "/")
        return JSONResponse.make(["message": "File uploaded successfully", "path": path, "size": part.sink.size])
    }

    /// `GET /api/local/download/:location/:b64path`: nginx serves the file
    /// from the location's internal alias, refusing symlinks on the way.
    func download(_ route: RouteRequest) throws -> Response {
        let (root, components, _) = try target(route, allowRoot: false)
        let entry = try mapped { try root.entry(components) }
        guard entry.kind == .file else { throw HTTPErrorResponse(.badRequest, "Not a file", code: "NotAFile") }
        let relative = components.map(FormURLEncoded.encode).joined(separator: "/")
        var headers = HTTPHeaders()
        let contentType = MediaTypeGuess.forFileName(entry.name)
        let disposition = StoredContent.disposition(.attachment, contentType: contentType, onContentOrigin: false)
        headers.set("Content-Type", contentType)
        headers.set("Content-Disposition", ContentDisposition.header(disposition, fileName: DisplayName.sanitize(entry.name)))
        headers.set("Cache-Control", "private, no-store")
        for (name, value) in StoredContent.hardeningHeaders { headers.set(name, value) }
        let file = ServedFile(relativePath: relative, absolutePath: root.path + "/" + components.joined(separator: "/"),
                              size: entry.size, accelPrefix: Self.accelPrefix(root.id))
        return Response(status: .ok, headers: headers, body: .file(file))
    }

    /// `DELETE /api/local/:location/:b64path`: a file, or a directory with everything in it.
    func delete(_ route: RouteRequest) throws -> Response {
        let (root, components, _) = try target(route, allowRoot: false)
        let count = try mapped { try root.delete(components) }
        return JSONResponse.make(["message": "Deleted successfully", "count": count])
    }

    /// `GET /api/local/view/:location/:b64path`.
    func view(_ route: RouteRequest) throws -> Response {
        let (root, components, _) = try target(route, allowRoot: true)
        let entry = try mapped { try root.entry(components) }
        var object = Self.json(entry)
        if entry.kind == .file { object["mimeType"] = MediaTypeGuess.forFileName(entry.name) }
        return JSONResponse.make(object)
    }

    /// `POST /api/local/create-directory/:location/:b64path`, parents included.
    func createDirectory(_ route: RouteRequest) throws -> Response {
        let (root, components, _) = try target(route, allowRoot: false)
        try mapped { try root.makeDirectory(components) }
        return JSONResponse.make(["message": "Directory created successfully", "path": components.joined(separator: "/")],
                                 status: .created)
    }

    /// The location and the path's components (checked: no `..`, no
    /// absolute path, no NUL). A path of `/` alone is the root.
    /// Also whether the path names a directory by ending in `/`.
    private func target(_ route: RouteRequest, allowRoot: Bool) throws -> (LocalRoot, [String], endsInSlash: Bool) {
        let id = route[parameter: "location"]
        guard let root = configuration.localLocations.first(where: { $0.id == id }) else {
            throw HTTPErrorResponse(.notFound, "Location \(id) does not exist", code: "NotFound")
        }
        var components: [String] = []
        var endsInSlash = false
        if route.parameters["path"] != nil {
            let path = try S4Key.decode(route[parameter: "path"], maxBytes: 4096, what: "path")
            components = path == "/" ? [] : try mapped { try LocalRoot.components(path) }
            endsInSlash = path.hasSuffix("/")
        }
        guard allowRoot || !components.isEmpty else {
            throw HTTPErrorResponse(.badRequest, "The location's root can't be the target", code: "InvalidPath")
        }
        return (root, components, endsInSlash)
    }

    /// Store errors in this API's words.
    private func mapped<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as StorageError {
            switch error.code {
            case .invalid: throw HTTPErrorResponse(.badRequest, error.detail, code: "InvalidPath")
            case .outOfScope: throw HTTPErrorResponse(.forbidden, "Path leaves the location", code: "AccessDenied")
            case .notFound: throw HTTPErrorResponse(.notFound, "No such file or directory", code: "NotFound")
            case .conflict: throw HTTPErrorResponse(.conflict, error.detail, code: "Conflict")
            default: throw error
            }
        }
    }

    static func json(_ entry: LocalRoot.Entry) -> [String: Any] {
        var object: [String: Any] = ["name": entry.name, "path": entry.path, "type": entry.kind.rawValue,
                                     "lastModified": ISO8601Timestamp.format(entry.modified)]
        if entry.kind == .file { object["size"] = entry.size }
        return object
    }

    static func number(_ text: String?, _ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text, !text.isEmpty else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw HTTPErrorResponse(.badRequest, "\(name) must be a whole number from \(range.lowerBound)", code: "BadRequest")
        }
        return value
    }
}

extension LocalFileWriter: FileSink {}
