import Foundation
import HTTPCore
import Store

/// The skysend dialect (`skysend-api.txt`, SkySend's Hono server): the
/// client encrypts everything with keys derived from a secret the server
/// never sees, and proves what it knows with two tokens derived from it,
/// which the server keeps as SHA-256 and compares in constant time.
/// Errors are `{"error": …}` in upstream's words.
///
/// `POST /api/upload` is shared with the uploader dialect: a
/// `multipart/form-data` body is an uploader upload, any other body a
/// skysend one (``BodyVariant``).
struct SkysendRoutes: DialectRoutes, ContextRoutes {
    let context: ServerContext

    init(_ context: ServerContext) { self.context = context }

    var configuration: SkysendConfiguration { context.configuration.skysend }

    static let api = "skysend"

    /// Upstream's ids: random UUIDs, in lowercase.
    static let id = ParameterConstraint.characters(
        "0123456789abcdef-", count: 36...36, regexClass: "0-9a-f-", example: "0b7c3a52-1d9e-4f7a-9c1e-2a4b6d8f0e13")

    static func register(in table: inout RouteTable, configuration: ServerConfiguration) {
        table.group(.json, prefix: "/api") { api in
            api.add("GET", "/config") { Self($0.server).config($0) }
            let note = ["id": id]
            api.add("POST", "/note", body: .json(limit: 2 << 20)) { try Self($0.server).createNote($0) }
            api.add("GET", "/note/:id", constraints: note) { try Self($0.server).noteInfo($0) }
            api.add("POST", "/note/:id/view", constraints: note, body: .json(limit: 16 << 10)) {
                try Self($0.server).viewNote($0)
            }
            api.add("POST", "/note/:id/password", constraints: note, body: .json(limit: 16 << 10)) {
                try Self($0.server).checkNotePassword($0)
            }
            api.add("DELETE", "/note/:id", constraints: note) { try Self($0.server).deleteNote($0) }
        }
        table.group(.json, prefix: "/api") { api in
            let file = ["id": fileId]
            // Shares its path with the uploader's multipart upload: any other body is this one.
            let maxUpload = configuration.skysend.maxUploadBytes
            api.add("POST", "/upload", body: .raw(limit: maxUpload, streamed: true,
                                                  tooLarge: "File size exceeds maximum of \(maxUpload) bytes"),
                    limit: .upload, detailed { try Self($0.server).upload($0) })
            api.add("POST", "/upload/init", limit: .upload, detailed { try Self($0.server).initUpload($0) })
            // The session id is the capability; upstream checks no token here either.
            api.add("POST", "/upload/:id/chunk", constraints: file,
                    body: .raw(limit: configuration.maxChunkBytes, streamed: true,
                               tooLarge: "Chunk too large (max \(configuration.maxChunkBytes >> 20) MB)"),
                    limit: .chunk) { try Self($0.server).uploadChunk($0) }
            api.add("POST", "/upload/:id/finalize", constraints: file) { try Self($0.server).finalizeUpload($0) }
            api.add("DELETE", "/upload/:id", constraints: file) { try Self($0.server).deleteFile($0) }
            api.add("POST", "/meta/:id", constraints: file, body: .json(limit: 256 << 10),
                    detailed { try Self($0.server).saveMetadata($0) })
            api.add("GET", "/info/:id", constraints: file) { try Self($0.server).fileInfo($0) }
            api.add("GET", "/exists/:id", constraints: file) { try Self($0.server).fileExists($0) }
            api.add("GET", "/download/:id", constraints: file, onContentOrigin: true) { try Self($0.server).download($0) }
            api.add("POST", "/password/:id", constraints: file, body: .json(limit: 16 << 10)) {
                try Self($0.server).checkFilePassword($0)
            }
        }
    }

    /// A file's id: its upload session's (32 hex digits), kept as the upload's public id.
    static let fileId = ParameterConstraint.characters(
        "0123456789abcdef", count: 32...32, regexClass: "0-9a-f", example: "0b7c3a521d9e4f7a9c1e2a4b6d8f0e13")

    /// 429 with `Retry-After` while this address is locked out of `resource`.
    func refuseIfLockedOut(_ route: RouteRequest, resource: String) throws {
        if let retryAfter = context.passwordLockout.retryAfter(resource, route.request.remoteAddress) {
            throw HTTPErrorResponse(.tooManyRequests, "Too many failed attempts. Try again later.",
                                    headers: HTTPHeaders([("Retry-After", String(retryAfter))]))
        }
    }

    /// The answer to a password check (a token derived from the password,
    /// against the stored hash), counting failures toward the lockout.
    func passwordCheck(_ route: RouteRequest, resource: String, token: String, hash: String) throws -> Response {
        let address = route.request.remoteAddress
        switch try Self.tokenMatches(token, hash: hash) {
        case nil:
            context.passwordLockout.recordFailure(resource, address)
            throw HTTPErrorResponse(.unauthorized, "Invalid auth token format")
        case false?:
            context.passwordLockout.recordFailure(resource, address)
            throw HTTPErrorResponse(.unauthorized, "Invalid password")
        case true?:
            context.passwordLockout.recordSuccess(resource, address)
            return JSONResponse.make(["ok": true])
        }
    }

    /// Renders ``SkysendDetailedError`` as upstream does: `{"error", "details": {field: [messages]}}`.
    static func detailed(_ handler: @escaping RouteHandler) -> RouteHandler {
        { route in
            do {
                return try handler(route)
            } catch let error as SkysendDetailedError {
                var response = JSONResponse.make(["error": error.message, "details": error.details], status: .badRequest)
                response.headers.set("Cache-Control", "no-store")
                return response
            }
        }
    }

    /// `GET /api/config`: the limits and options a client offers its user.
    func config(_ route: RouteRequest) -> Response {
        JSONResponse.make([
            "maxFileSize": configuration.maxUploadBytes,
            "maxFilesPerUpload": 32,
            "expireOptions": configuration.expireOptions,
            "defaultExpire": configuration.expireOptions.contains(86_400) ? 86_400 : configuration.expireOptions[0],
            "downloadOptions": configuration.downloadOptions,
            "defaultDownload": configuration.downloadOptions[0],
            "customTitle": "SkySend",
            "customColor": NSNull(),
            "customLogo": NSNull(),
        ])
    }
}

/// Upstream's salt checks, the same for files and notes.
enum SkysendEncoding {
    /// Standard base64 (as notes' content and nonces travel), or nil.
    static func base64(_ text: String) -> [UInt8]? {
        Data(base64Encoded: text).map { Array($0) }
    }

    /// A 16-byte base64url salt, or 400 naming `what` ("salt", "password salt").
    static func salt(_ text: String, _ what: String) throws -> [UInt8] {
        guard let bytes = Base64URL.decode(text) else { throw HTTPErrorResponse(.badRequest, "Invalid \(what) encoding") }
        guard bytes.count == 16 else {
            throw HTTPErrorResponse(.badRequest, what.prefix(1).uppercased() + what.dropFirst() + " must be exactly 16 bytes")
        }
        return bytes
    }

    /// A protected upload or note must name its password salt and algorithm;
    /// `missing` is the dialect's words when it doesn't.
    static func checkPassword(salt: String?, algorithm: String?, missing: String) throws {
        guard let salt, algorithm != nil else { throw HTTPErrorResponse(.badRequest, missing) }
        _ = try Self.salt(salt, "password salt")
    }
}
