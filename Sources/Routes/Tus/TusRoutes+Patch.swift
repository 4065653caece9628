import Foundation
import HTTPCore
import OpenSSLCrypto
import Store

/// `PATCH /api/tus/:id`: bytes at the offset the server reports, with an
/// optional checksum; the last ones finish the upload.
extension TusRoutes {
    func patch(_ route: RouteRequest) throws -> Response {
        let request = route.request
        try Self.requireResumable(request)
        guard request.headers["Content-Type"] == Self.offsetContentType else {
            throw HTTPErrorResponse(HTTPStatus(code: 415, reason: "Unsupported Media Type"),
                                    "PATCH takes Content-Type: \(Self.offsetContentType)")
        }
        guard let claimed = try Self.offsetHeader(request, "Upload-Offset") else {
            throw HTTPErrorResponse(.badRequest, "Upload-Offset required")
        }
        let length = try Self.offsetHeader(request, "Upload-Length")
        let checksum = try checksum(request)  // a malformed one is refused before the lock
        let id = route[parameter: "id"], owner = owner(of: route)
        let admitted = { try store.tusUploads.upload(id: id, owner: owner) != nil }
        let locked = try store.withSessionLock(id, admitting: admitted) { () -> (offset: Int64, finished: Bool, expires: Date?) in
            switch try store.tusUploads.upload(id: id, owner: owner) {
            case nil:
                throw HTTPErrorResponse(.notFound, "Upload not found")
            case .finished(let upload, let attributes)?:
                if attributes.concatenated != nil { throw HTTPErrorResponse(.forbidden, "A final upload takes no PATCH") }
                guard claimed == upload.size else { throw offsetConflict(upload.size) }
                // At the end of a finished upload only an empty PATCH fits.
                if (request.contentLength ?? 0) > 0 {
                    throw HTTPErrorResponse(.payloadTooLarge, "The upload is complete: no bytes fit after its end")
                }
                return (upload.size, true, nil)
            case .open(var session, var terms, let offset, let index)?:
                guard claimed == offset else { throw offsetConflict(offset) }
                if let length {
                    if terms.lengthDeferred {
                        guard length <= maxSize else {
                            throw HTTPErrorResponse(.payloadTooLarge, "Upload-Length exceeds Tus-Max-Size (\(maxSize) bytes)")
                        }
                        do {
                            try store.tusUploads.declareLength(sessionId: id, length: length, offset: offset, maxSize: maxSize)
                        } catch let error as StorageError where error.code == .invalid {
                            throw HTTPErrorResponse(.badRequest, "Upload-Length is below the offset")
                        }
                        session.declaredSize = length
                        terms.lengthDeferred = false
                    } else if length != session.declaredSize {
                        throw HTTPErrorResponse(.badRequest, "Upload-Length differs from the upload's length")
                    }
                }
                // Each PATCH that brought bytes is one record: refused before
                // any byte is read once the upload has as many as the server allows.
                guard index <= store.maxChunkIndex(of: session) else {
                    throw HTTPErrorResponse(.badRequest, "This upload has taken \(index) PATCH requests, the most the server "
                                            + "allows one upload (MINIHOST_MAX_CHUNKS); send an upload in fewer, larger PATCHes")
                }
                let result = try append(request, session: session, terms: terms, offset: offset, index: index,
                                        checksum: checksum)
                return (result.offset, result.finished, session.expiresAt)
            }
        }
        guard let written = locked else { throw HTTPErrorResponse(.notFound, "Upload not found") }
        var response = Response(status: .noContent)
        response.headers.set("Upload-Offset", String(written.offset))
        if !written.finished, let expires = written.expires { response.headers.set("Upload-Expires", HTTPDate.format(expires)) }
        return response
    }

    private func offsetConflict(_ offset: Int64) -> HTTPErrorResponse {
        HTTPErrorResponse(.conflict, "Upload-Offset differs from the upload's offset",
                          headers: HTTPHeaders([("Upload-Offset", String(offset))]))
    }

    typealias Checksum = (algorithm: MessageDigest.Algorithm, digest: [UInt8])

    /// `Upload-Checksum: <algorithm> <base64 digest>`, or nil; 400 when malformed or unsupported.
    func checksum(_ request: Request) throws -> Checksum? {
        guard let text = request.headers["Upload-Checksum"] else { return nil }
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2, let algorithm = MessageDigest.Algorithm(rawValue: String(parts[0]).lowercased()) else {
            throw HTTPErrorResponse(.badRequest, "Upload-Checksum must be '<sha1|md5|sha256> <base64 digest>'")
        }
        guard let digest = Data(base64Encoded: String(parts[1])) else {
            throw HTTPErrorResponse(.badRequest, "Upload-Checksum's digest is not base64")
        }
        return (algorithm, Array(digest))
    }

    /// Writes the body at `offset` and acknowledges it once fsync'd; finishes
    /// the upload when that was its last byte. Call holding the session lock.
    ///
    /// A body cut off mid-way keeps the bytes that arrived (the offset a
    /// `HEAD` then reports), unless a checksum was sent, which they can't
    /// match. More bytes than the length leaves is 413 and keeps nothing; so
    /// does a checksum mismatch (460).
    func append(_ request: Request, session: UploadSession, terms: TusUploadTerms, offset: Int64, index: Int64,
                checksum expected: Checksum?) throws -> (offset: Int64, finished: Bool) {
        let remaining = session.declaredSize - offset
        let digest = try expected.map { try MessageDigest($0.algorithm) }
        let writer = try RawBodyReceiver(maxBytes: remaining).receive(
            request, tooLarge: HTTPErrorResponse(.payloadTooLarge, "The body exceeds the upload's remaining \(remaining) bytes"),
            inspect: digest.map { digest in { try digest.update($0) } },
            keepOnDisconnect: expected == nil ? { try store.acceptChunk($0) } : nil) {
            try store.makeAppendWriter(sessionId: session.id, index: index, offset: offset, capacity: remaining)
        }
        if let expected, let digest, try digest.finalize() != expected.digest {
            writer.abandon()
            throw HTTPErrorResponse(Self.checksumMismatch, "Checksum Mismatch")
        }
        let written = offset + writer.size
        if writer.size > 0 {
            try store.acceptChunk(writer)
        } else {
            writer.abandon()  // an empty PATCH, which may only declare the length
        }
        guard !terms.lengthDeferred, written == session.declaredSize else { return (written, false) }
        guard try store.tusUploads.finish(session, terms: terms) != nil else {
            throw HTTPErrorResponse(.conflict, "The upload is being finished")
        }
        return (written, true)
    }
}
