import Foundation
import HTTPCore
import Store

/// tus 1.0.0 (tus.io/protocols/resumable-upload) at `/api/tus`: the core
/// protocol and the creation, creation-with-upload, creation-defer-length,
/// expiration, checksum, termination and concatenation extensions.
///
/// Each upload is a durable core session written in order: a `PATCH`'s
/// bytes are fsync'd before its offset is acknowledged, a `PATCH` cut off
/// keeps what arrived, and `PATCH`es of one upload queue on a lock. Once
/// every byte is in, it is a minihost upload with the same id, downloadable
/// and publishable like any other. Uploads belong to the API client (scope
/// `upload`) that created them; another client gets 404.
struct TusRoutes: DialectRoutes, ContextRoutes {
    let context: ServerContext

    init(_ context: ServerContext) { self.context = context }

    /// `Tus-Max-Size`: the resumable upload limit (`MINIHOST_MAX_CHUNKED_MB`).
    var maxSize: Int64 { context.configuration.maxChunkedUploadBytes }

    static let api = "tus"
    static let version = "1.0.0"
    static let extensions = "creation,creation-with-upload,creation-defer-length,expiration,checksum,termination,concatenation"
    static let offsetContentType = "application/offset+octet-stream"
    static let checksumMismatch = HTTPStatus(code: 460, reason: "Checksum Mismatch")

    /// Plain-text errors; `Tus-Resumable` on every answer, errors included.
    static let dialect = Dialect(name: "tus", headers: HTTPHeaders([("Tus-Resumable", version)])) { answer in
        var response = PlainTextResponse.make(answer.message, status: answer.status)
        response.headers.set("Cache-Control", "no-store")
        return response
    }

    static func register(in table: inout RouteTable, configuration: ServerConfiguration) {
        let max = configuration.maxChunkedUploadBytes
        let body = BodyPolicy.raw(limit: max, streamed: true, tooLarge: "Upload exceeds Tus-Max-Size (\(max) bytes)")
        let id = ["id": MinihostRoutes.uploadId]
        table.group(dialect, prefix: "/api/tus", auth: .apiClient(scope: "upload")) { tus in
            tus.add("OPTIONS", "", auth: Authentication.none) { Self($0.server).options($0) }
            tus.add("POST", "", body: body, limit: .chunk) { try Self($0.server).create($0) }
            tus.add("HEAD", "/:id", constraints: id) { try Self($0.server).head($0) }
            tus.add("PATCH", "/:id", constraints: id, body: body, limit: .chunk) { try Self($0.server).patch($0) }
            tus.add("DELETE", "/:id", constraints: id) { try Self($0.server).terminate($0) }
        }
    }

    /// `OPTIONS /api/tus`: what this server speaks.
    func options(_ route: RouteRequest) -> Response {
        var response = Response(status: .noContent)
        response.headers.set("Tus-Version", Self.version)
        response.headers.set("Tus-Extension", Self.extensions)
        response.headers.set("Tus-Max-Size", String(maxSize))
        response.headers.set("Tus-Checksum-Algorithm", "sha1,md5,sha256")
        return response
    }

    /// 412 unless the client speaks tus 1.0.0 (every request but `OPTIONS`).
    static func requireResumable(_ request: Request) throws {
        guard request.headers["Tus-Resumable"] == version else {
            throw HTTPErrorResponse(HTTPStatus(code: 412, reason: "Precondition Failed"), "Tus-Resumable 1.0.0 required",
                                    headers: HTTPHeaders([("Tus-Version", version)]))
        }
    }

    /// A non-negative whole number header, or 400 naming it.
    static func offsetHeader(_ request: Request, _ name: String) throws -> Int64? {
        guard let text = request.headers[name] else { return nil }
        guard !text.isEmpty, text.utf8.count <= 19, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let value = Int64(text) else {
            throw HTTPErrorResponse(.badRequest, "\(name) must be a non-negative whole number")
        }
        return value
    }

    /// The API client the route authenticated: it owns the uploads it creates.
    func owner(of route: RouteRequest) -> Owner { .apiClient(route.identity(APIClient.self).clientKey) }

    func location(_ request: Request, _ id: String) -> String { "\(context.origin(for: request))/api/tus/\(id)" }

    /// `HEAD /api/tus/:id`: the offset to resume from, and what the upload was created with.
    func head(_ route: RouteRequest) throws -> Response {
        try Self.requireResumable(route.request)
        var response = Response(status: .ok)
        response.headers.set("Cache-Control", "no-store")
        switch try store.tusUploads.upload(id: route[parameter: "id"], owner: owner(of: route)) {
        case nil:
            throw HTTPErrorResponse(.notFound, "Upload not found")
        case .open(let session, let terms, let offset, _)?:
            response.headers.set("Upload-Offset", String(offset))
            if terms.lengthDeferred {
                response.headers.set("Upload-Defer-Length", "1")
            } else {
                response.headers.set("Upload-Length", String(session.declaredSize))
            }
            if let metadata = terms.metadata { response.headers.set("Upload-Metadata", metadata) }
            if terms.partial { response.headers.set("Upload-Concat", "partial") }
            response.headers.set("Upload-Expires", HTTPDate.format(session.expiresAt))
        case .finished(let upload, let attributes)?:
            response.headers.set("Upload-Offset", String(upload.size))
            response.headers.set("Upload-Length", String(upload.size))
            if let metadata = attributes.metadata { response.headers.set("Upload-Metadata", metadata) }
            if let concat = concatHeader(attributes) { response.headers.set("Upload-Concat", concat) }
        }
        return response
    }

    func concatHeader(_ attributes: TusUploadAttributes) -> String? {
        if attributes.partial { return "partial" }
        guard let ids = attributes.concatenated else { return nil }
        return "final;" + ids.split(separator: " ").map { "/api/tus/\($0)" }.joined(separator: " ")
    }

    /// `DELETE /api/tus/:id` (termination): the upload and its bytes, finished or not.
    func terminate(_ route: RouteRequest) throws -> Response {
        try Self.requireResumable(route.request)
        let id = route[parameter: "id"], owner = owner(of: route)
        guard try store.tusUploads.upload(id: id, owner: owner) != nil else { throw HTTPErrorResponse(.notFound, "Upload not found") }
        // After any PATCH in progress: its bytes go too.
        let removed = try store.withSessionLock(id) { try store.tusUploads.terminate(id: id, owner: owner) }
        guard removed else { throw HTTPErrorResponse(.notFound, "Upload not found") }
        return Response(status: .noContent)
    }
}
