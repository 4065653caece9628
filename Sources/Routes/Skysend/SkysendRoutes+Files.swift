import Foundation
import HTTPCore
import OpenSSLCrypto
import Store

/// Files: ciphertext the client encrypted, uploaded in one request or in
/// chunks through a durable core session (init → chunks → finalize), then served to whoever
/// proves the auth token, at most `maxDownloads` times, until it expires.
extension SkysendRoutes {
    /// The upload headers, checked as upstream's schema and limits check them.
    func uploadTerms(_ request: Request) throws -> (terms: SkysendUploadTerms, declaredSize: Int64) {
        let headers = request.headers
        var problems: [String: [String]] = [:]
        func token(_ field: String, _ name: String, required: Bool = true) -> String? {
            guard let value = headers[name], !value.isEmpty else {
                if required { problems[field] = ["Required"] }
                return nil
            }
            guard value.utf8.allSatisfy({ Base64URL.isAlphabet($0) }) else {
                problems[field] = ["Invalid base64url"]
                return nil
            }
            return value
        }
        func positive(_ field: String, _ value: String?, fallback: String? = nil) -> Int? {
            guard let text = value ?? fallback else {
                problems[field] = ["Required"]
                return nil
            }
            guard let number = Int(text.prefix { $0.isNumber }), number > 0 else {
                problems[field] = ["Number must be greater than 0"]
                return nil
            }
            return number
        }
        let authToken = token("authToken", "X-Auth-Token"), ownerToken = token("ownerToken", "X-Owner-Token")
        let salt = token("salt", "X-Salt")
        let maxDownloads = positive("maxDownloads", headers["X-Max-Downloads"])
        let expireSec = positive("expireSec", headers["X-Expire-Sec"])
        let fileCount = positive("fileCount", headers["X-File-Count"], fallback: "1")
        let contentLength = positive("contentLength", headers["X-Content-Length"] ?? headers["Content-Length"])
        let hasPassword = headers["X-Has-Password"] == "true"
        let passwordSalt = token("passwordSalt", "X-Password-Salt", required: false)
        let passwordAlgo = headers["X-Password-Algo"].flatMap { $0.isEmpty ? nil : $0 }
        if let passwordAlgo, !["argon2id", "pbkdf2"].contains(passwordAlgo) {
            problems["passwordAlgo"] = ["Invalid enum value. Expected 'argon2id' | 'pbkdf2'"]
        }
        guard problems.isEmpty, let authToken, let ownerToken, let salt, let maxDownloads, let expireSec, let fileCount,
              let contentLength else {
            throw SkysendDetailedError(message: "Invalid request headers", details: problems)
        }
        let saltBytes = try SkysendEncoding.salt(salt, "salt")
        guard Int64(contentLength) <= configuration.maxUploadBytes else {
            throw HTTPErrorResponse(.payloadTooLarge, "File size exceeds maximum of \(configuration.maxUploadBytes) bytes")
        }
        guard fileCount <= 32 else { throw HTTPErrorResponse(.badRequest, "Maximum 32 files per upload") }
        guard configuration.expireOptions.contains(expireSec) else {
            throw HTTPErrorResponse(.badRequest, "Invalid expiry time. Must be one of the allowed options.")
        }
        guard configuration.downloadOptions.contains(maxDownloads) else {
            throw HTTPErrorResponse(.badRequest, "Invalid download limit. Must be one of the allowed options.")
        }
        if hasPassword {
            try SkysendEncoding.checkPassword(
                salt: passwordSalt, algorithm: passwordAlgo,
                missing: "Password-protected uploads require X-Password-Salt and X-Password-Algo")
        }
        guard let authBytes = Base64URL.decode(authToken), let ownerBytes = Base64URL.decode(ownerToken) else {
            throw SkysendDetailedError(message: "Invalid request headers", details: ["authToken": ["Invalid base64url"]])
        }
        let terms = SkysendUploadTerms(
            authTokenHash: try SkysendNoteStore.tokenHash(authBytes), ownerTokenHash: try SkysendNoteStore.tokenHash(ownerBytes),
            salt: Base64URL.encode(saltBytes), fileCount: fileCount, maxDownloads: maxDownloads, expireSeconds: expireSec,
            passwordSalt: hasPassword ? passwordSalt : nil, passwordAlgo: hasPassword ? passwordAlgo : nil)
        return (terms, Int64(contentLength))
    }

    /// `POST /api/upload` (any body but a form, which is the uploader's): the
    /// whole ciphertext in one raw body, streamed to a temporary blob and
    /// recorded only if exactly the declared bytes arrived; 201 `{id, url}`.
    func upload(_ route: RouteRequest) throws -> Response {
        let (terms, size) = try uploadTerms(route.request)
        let mismatch = HTTPErrorResponse(.badRequest, "Body size does not match declared content length")
        // More bytes than declared stop the body at once; fewer are found at its end.
        let blob = try RawBodyReceiver(maxBytes: size).receive(route.request, into: store, tooLarge: mismatch)
        guard blob.size == size else {
            blob.discard()
            throw mismatch
        }
        let file = try store.skysendFiles.commit(blob, terms: terms)
        return JSONResponse.make(["id": file.id, "url": "\(context.origin(for: route.request))/#\(file.id)"], status: .created)
    }

    /// `POST /api/upload/init`: the headers checked, a session opened; 201 `{id}`.
    func initUpload(_ route: RouteRequest) throws -> Response {
        let (terms, size) = try uploadTerms(route.request)
        let session = try store.skysendFiles.openSession(terms, declaredSize: size, maxSize: configuration.maxUploadBytes,
                                                        lifetime: context.configuration.sessionLifetime)
        return JSONResponse.make(["id": session.id], status: .created)
    }

    private func openSession(_ route: RouteRequest) throws -> (UploadSession, SkysendUploadTerms) {
        guard let session = try store.session(id: route[parameter: "id"]), session.state == .open,
              let terms = store.skysendFiles.terms(of: session) else {
            throw HTTPErrorResponse(.notFound, "Upload session not found or expired")
        }
        return (session, terms)
    }

    /// `POST /api/upload/:id/chunk?index=N`: raw bytes, written in place; `{bytesWritten}`.
    func uploadChunk(_ route: RouteRequest) throws -> Response {
        let (session, _) = try openSession(route)
        guard let text = route.request.query["index"], let index = Int64(text), index >= 0 else {
            throw HTTPErrorResponse(.badRequest, "Missing or invalid chunk index")
        }
        do {
            try store.checkChunk(index: index, of: session)
            let limit = min(context.configuration.maxChunkBytes, session.declaredSize)
            let writer = try RawBodyReceiver(maxBytes: limit).receive(
                route.request, tooLarge: HTTPErrorResponse(.payloadTooLarge, "Chunk too large")) {
                try store.makeChunkWriter(sessionId: session.id, index: index, expectedSize: route.request.contentLength.map(Int64.init))
            }
            try store.acceptChunk(writer)
        } catch let error as StorageError where error.code == .invalid {
            throw HTTPErrorResponse(.badRequest, error.detail.prefix(1).uppercased() + error.detail.dropFirst())
        } catch let error as StorageError where error.code == .notFound {
            throw HTTPErrorResponse(.notFound, "Upload session not found or expired")
        }
        return JSONResponse.make(["bytesWritten": try store.skysendFiles.receivedBytes(ofSession: session.id)])
    }

    /// `POST /api/upload/:id/finalize` with `X-Owner-Token`: `{id}` once every
    /// declared byte arrived.
    func finalizeUpload(_ route: RouteRequest) throws -> Response {
        let (session, terms) = try openSession(route)
        try requireToken(route.request.headers["X-Owner-Token"], hash: terms.ownerTokenHash, kind: "owner")
        do {
            guard let file = try store.skysendFiles.finish(sessionId: session.id, terms: terms) else {
                throw HTTPErrorResponse(.conflict, "Upload is being finalized")
            }
            return JSONResponse.make(["id": file.id])
        } catch let error as StorageError where error.code == .invalid {
            throw HTTPErrorResponse(.badRequest, "Body size does not match declared content length")
        } catch let error as StorageError where error.code == .notFound {
            throw HTTPErrorResponse(.notFound, "Upload session not found or expired")
        }
    }

    /// A token header checked against its hash: 401 in upstream's words.
    func requireToken(_ presented: String?, hash: String, kind: String) throws {
        let header = kind == "owner" ? "X-Owner-Token" : "X-Auth-Token"
        guard let presented, !presented.isEmpty else { throw HTTPErrorResponse(.unauthorized, "Missing \(header) header") }
        switch try Self.tokenMatches(presented, hash: hash) {
        case nil: throw HTTPErrorResponse(.unauthorized, "Invalid \(kind) token format")
        case false?: throw HTTPErrorResponse(.unauthorized, "Invalid \(kind) token")
        case true?: return
        }
    }

    /// The file, or 404 ("unknown id: 404 before any token check").
    func skysendFile(_ route: RouteRequest) throws -> SkysendFile {
        guard let file = try store.skysendFiles.file(id: route[parameter: "id"]) else {
            throw HTTPErrorResponse(.notFound, "Upload not found")
        }
        return file
    }

    /// 410 in upstream's words once the file ended.
    static func refuseEnded(_ upload: Upload, now: Date = Date()) throws {
        if upload.isExpired(at: now) && !upload.isExhausted { throw HTTPErrorResponse(.gone, "Upload has expired") }
        if upload.isExhausted { throw HTTPErrorResponse(.gone, "Download limit reached") }
    }

    /// `GET /api/info/:id`: what a recipient needs before downloading.
    func fileInfo(_ route: RouteRequest) throws -> Response {
        let file = try skysendFile(route)
        try Self.refuseEnded(file.upload)
        let attributes = file.attributes
        var answer: [String: Any] = [
            "id": file.id, "size": file.upload.size, "fileCount": attributes.fileCount,
            "hasPassword": attributes.passwordAlgo != nil, "salt": attributes.salt,
            "encryptedMeta": attributes.encryptedMeta.map { $0.base64EncodedString() } ?? NSNull(),
            "nonce": attributes.metaNonce.map { $0.base64EncodedString() } ?? NSNull(),
            "downloadCount": file.upload.downloadCount, "maxDownloads": file.upload.maxDownloads ?? 0,
            "expiresAt": ISO8601Timestamp.format(file.upload.expiresAt ?? file.upload.createdAt),
            "createdAt": ISO8601Timestamp.format(file.upload.createdAt),
        ]
        if attributes.passwordAlgo != nil {
            answer["passwordAlgo"] = attributes.passwordAlgo
            answer["passwordSalt"] = attributes.passwordSalt
        }
        return JSONResponse.make(answer)
    }

    /// `GET /api/exists/:id`: `{exists}`, 404 or 410 with the reason.
    func fileExists(_ route: RouteRequest) throws -> Response {
        guard let file = try store.skysendFiles.file(id: route[parameter: "id"]) else {
            return JSONResponse.make(["exists": false], status: .notFound)
        }
        if file.upload.hasEnded(at: Date()) {
            return JSONResponse.make(["exists": false, "reason": file.upload.isExhausted ? "limit_reached" : "expired"],
                                     status: .gone)
        }
        return JSONResponse.make(["exists": true])
    }

    /// `POST /api/meta/:id` with `X-Owner-Token`: `{encryptedMeta, nonce}`, once.
    func saveMetadata(_ route: RouteRequest) throws -> Response {
        let file = try skysendFile(route)
        try requireToken(route.request.headers["X-Owner-Token"], hash: file.attributes.ownerTokenHash, kind: "owner")
        guard file.attributes.encryptedMeta == nil else { throw HTTPErrorResponse(.conflict, "Metadata already set") }
        let body = route.json
        var problems: [String: [String]] = [:]
        let meta = body["encryptedMeta"] as? String, nonce = body["nonce"] as? String
        if meta.map({ !(1...100_000).contains($0.count) }) ?? true { problems["encryptedMeta"] = ["Required"] }
        if nonce.map({ !(1...100).contains($0.count) }) ?? true { problems["nonce"] = ["Required"] }
        guard problems.isEmpty, let meta, let nonce else {
            throw SkysendDetailedError(message: "Invalid request body", details: problems)
        }
        guard let metaBytes = SkysendEncoding.base64(meta), !metaBytes.isEmpty else {
            throw HTTPErrorResponse(.badRequest, "Invalid encryptedMeta encoding")
        }
        guard let nonceBytes = SkysendEncoding.base64(nonce), !nonceBytes.isEmpty else {
            throw HTTPErrorResponse(.badRequest, "Invalid nonce encoding")
        }
        guard try store.skysendFiles.setMetadata(file, encrypted: Data(metaBytes), nonce: Data(nonceBytes)) else {
            throw HTTPErrorResponse(.conflict, "Metadata already set")
        }
        return JSONResponse.make(["ok": true])
    }

    /// `GET /api/download/:id` with `X-Auth-Token`: the ciphertext, each
    /// download counted atomically.
    func download(_ route: RouteRequest) throws -> Response {
        let file = try skysendFile(route)
        try requireToken(route.request.headers["X-Auth-Token"], hash: file.attributes.authTokenHash, kind: "auth")
        try Self.refuseEnded(file.upload)
        guard case .granted(let upload) = try store.claimDownload(uploadId: file.upload.id) else {
            throw HTTPErrorResponse(.gone, "Upload no longer available")
        }
        var response = StoredContent.response(upload, store: store, request: route.request, disposition: .attachment,
                                              cacheControl: "no-store")
        response.headers.set("Content-Type", "application/octet-stream")
        response.headers.set("X-File-Count", String(file.attributes.fileCount))
        return response
    }

    /// `POST /api/password/:id` `{authToken}`: whether the token derived from a
    /// password is right; ten failures from one address lock it out for 15 minutes.
    func checkFilePassword(_ route: RouteRequest) throws -> Response {
        let resource = "file:" + route[parameter: "id"]
        try refuseIfLockedOut(route, resource: resource)
        guard let token = route.json["authToken"] as? String, !token.isEmpty else {
            throw HTTPErrorResponse(.badRequest, "Missing authToken in body")
        }
        let file = try skysendFile(route)
        guard file.attributes.passwordAlgo != nil else { throw HTTPErrorResponse(.badRequest, "Upload is not password-protected") }
        if file.upload.isExpired(at: Date()) { throw HTTPErrorResponse(.gone, "Upload has expired") }
        return try passwordCheck(route, resource: resource, token: token, hash: file.attributes.authTokenHash)
    }

    /// `DELETE /api/upload/:id` with `X-Owner-Token`.
    func deleteFile(_ route: RouteRequest) throws -> Response {
        let file = try skysendFile(route)
        try requireToken(route.request.headers["X-Owner-Token"], hash: file.attributes.ownerTokenHash, kind: "owner")
        try store.skysendFiles.delete(file)
        return JSONResponse.make(["ok": true])
    }
}

/// A 400 with upstream's `details` object (field → messages).
struct SkysendDetailedError: Error {
    let message: String
    let details: [String: [String]]
}
