import Foundation
import HTTPCore
import OpenSSLCrypto
import Store

/// The resumable flow: init → chunks (any order, retried freely) → finish,
/// with status polling. Answers are plain text; errors are `ERR …`.
extension PlainRoutes {
    /// `POST /api/initChunkedUploadPlain`: `username, password, filename, size[, folderId]` → the session id.
    func initChunked(_ route: RouteRequest) throws -> Response {
        let fields = route.fields
        let credential = route.identity(AccountCredential.self)
        guard let fileName = fields["filename"], !fileName.isEmpty, let sizeText = fields["size"], !sizeText.isEmpty else {
            throw Self.missingFields
        }
        guard let size = Int64(sizeText), size > 0, size <= context.configuration.maxChunkedUploadBytes else {
            throw HTTPErrorResponse(.badRequest, "Invalid file size")
        }
        let folder = try targetFolder(credential, fields["folderId"])
        let user = credential.user
        do {
            let session = try store.plainUploads.openSession(
                SessionRequest(owner: user.owner, fileName: DisplayName.sanitize(fileName),
                               contentType: MediaTypeGuess.forFileName(fileName), declaredSize: size),
                folderId: folder.id, maxSize: context.configuration.maxChunkedUploadBytes, quotaBytes: user.quotaBytes,
                lifetime: context.configuration.sessionLifetime)
            return PlainTextResponse.make(session.id)
        } catch let error as StorageError where error.code == .quotaExceeded {
            throw HTTPErrorResponse(.payloadTooLarge, "Storage limit exceeded")
        }
    }

    /// `POST /api/uploadChunkPlain?id=…&chunk=N`, multipart field `file`. No
    /// credentials, as upstream: the 128-bit session id is the capability.
    func uploadChunk(_ route: RouteRequest) throws -> Response {
        let request = route.request
        let query = request.query
        guard let id = query["id"], !id.isEmpty else { throw HTTPErrorResponse(.badRequest, "Missing id") }
        guard let chunkText = query["chunk"], let index = Int64(chunkText), index >= 0 else {
            throw HTTPErrorResponse(.badRequest, "Invalid chunk number")
        }
        guard let session = try store.session(id: id), session.state == .open else {
            throw HTTPErrorResponse(.badRequest, "Not found")
        }
        // Refused before any byte is taken; checked again when recorded.
        do { try store.checkChunk(index: index, of: session) } catch let error as StorageError where error.code == .invalid {
            throw HTTPErrorResponse(.badRequest, Self.sentence(error.detail))
        }
        let limit = min(context.configuration.maxChunkBytes, session.declaredSize)
        let received = try FileUploadReceiver(maxBytes: limit)
            .receive(request, tooLarge: HTTPErrorResponse(.payloadTooLarge, "Chunk too large")) { _, expectedSize, _ in
                try store.makeChunkWriter(sessionId: id, index: index, expectedSize: expectedSize)
            }
        do {
            try store.acceptChunk(received.sink)
        } catch let error as StorageError where error.code == .notFound {
            throw HTTPErrorResponse(.badRequest, "Not found")
        } catch let error as StorageError where error.code == .invalid {
            throw HTTPErrorResponse(.badRequest, Self.sentence(error.detail))
        }
        return PlainTextResponse.make("OK")
    }

    /// `GET /api/chunkedUploadStatusPlain?id=…`: PENDING, PROCESSING, or COMPLETED with the links.
    func chunkStatus(_ route: RouteRequest) throws -> Response {
        let request = route.request
        guard let id = request.query["id"], !id.isEmpty else { throw HTTPErrorResponse(.badRequest, "Missing id") }
        guard let session = try store.session(id: id) else { throw HTTPErrorResponse(.notFound, "Not found") }
        switch session.state {
        case .open: return PlainTextResponse.make("PENDING")
        case .assembling: return PlainTextResponse.make("PROCESSING")
        case .completed:
            guard let uploadId = session.uploadId, let upload = try store.upload(id: uploadId), upload.state == .ready else {
                throw HTTPErrorResponse(.notFound, "Not found")
            }
            let plain = try store.plainUploads.plainUpload(upload)
            return PlainTextResponse.make("COMPLETED\n" + links(for: plain, request))
        }
    }

    /// `POST /api/finishChunkedUploadPlain`: `username, password, id[, filename, folderId,
    /// forceDownload, skipEmbeddedPage]` → the links; 202 while another call assembles.
    func finishChunked(_ route: RouteRequest) throws -> Response {
        let request = route.request
        let fields = route.fields
        let credential = route.identity(AccountCredential.self)
        guard let id = fields["id"], !id.isEmpty else { throw Self.missingFields }
        let user = credential.user
        var folderId: Int64?
        if fields["folderId"].map({ !$0.isEmpty }) ?? false { folderId = try targetFolder(credential, fields["folderId"]).id }
        let fileName = fields["filename"].flatMap { $0.isEmpty ? nil : DisplayName.sanitize($0) }
        let attributes = PlainUploadAttributes(folderId: folderId, forceDownload: FormFlag.isTrue(fields["forceDownload"]),
                                               skipEmbeddedPage: FormFlag.isTrue(fields["skipEmbeddedPage"]))
        let outcome: PlainSessionFinish
        do {
            outcome = try store.plainUploads.finishSession(id: id, owner: user.owner, attributes: attributes) { upload in
                upload.publicId = try Self.newPublicId()
                if let fileName {
                    upload.fileName = fileName
                    upload.contentType = MediaTypeGuess.forFileName(fileName)
                }
            }
        } catch let error as StorageError where error.code == .notFound {
            throw HTTPErrorResponse(.badRequest, "Upload not found")
        } catch let error as StorageError where error.code == .invalid {
            throw HTTPErrorResponse(.badRequest, Self.sentence(error.detail))
        } catch let error as StorageError where error.code == .io {
            context.logger.error("reassembly failed", metadata: ["session": "\(id)", "error": "\(error)"])
            throw HTTPErrorResponse(.internalServerError, "Reassemble failed")
        }
        switch outcome {
        case .inProgress:
            var response = PlainTextResponse.make("PROCESSING Retry in 5 seconds", status: .accepted)
            response.headers.set("Retry-After", "5")
            return response
        case .completed(let upload):
            return PlainTextResponse.make(links(for: upload, request))
        }
    }

    /// The folder to file into, with the spec's errors.
    func targetFolder(_ credential: AccountCredential, _ requested: String?) throws -> Folder {
        var folderId: Int64?
        if let requested, !requested.isEmpty {
            guard let id = Int64(requested) else { throw HTTPErrorResponse(.badRequest, "Invalid folderId") }
            folderId = id
        }
        do {
            return try store.accounts.targetFolder(for: credential, requested: folderId)
        } catch let error as StorageError where error.code == .outOfScope {
            throw HTTPErrorResponse(.forbidden, "Folder is outside this password's scope")
        } catch let error as StorageError where error.code == .notFound {
            throw HTTPErrorResponse(.notFound, "Folder not found")
        }
    }

    /// A store detail as the start of an `ERR …` line ("missing chunks: 3" → "Missing chunks: 3").
    static func sentence(_ detail: String) -> String {
        detail.prefix(1).uppercased() + detail.dropFirst()
    }

    /// 96 random bits, URL-safe: public link ids can't be guessed or enumerated.
    static func newPublicId() throws -> String {
        Base64URL.encode(try SecureRandom.bytes(12))
    }
}
