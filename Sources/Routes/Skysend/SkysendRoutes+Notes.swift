import Foundation
import HTTPCore
import OpenSSLCrypto
import Store

/// Notes: text the client encrypted (AES-256-GCM), kept in the database,
/// shown to whoever proves the auth token, at most `maxViews` times.
extension SkysendRoutes {
    static let noteContentTypes: Set<String> = ["text", "password", "code", "markdown", "sshkey"]

    /// `POST /api/note`: 201 `{id, expiresAt}`.
    func createNote(_ route: RouteRequest) throws -> Response {
        let body = route.json
        var problems: [String: [String]] = [:]
        func text(_ name: String, required: Bool = true) -> String? {
            guard let value = body[name], !(value is NSNull) else {
                if required { problems[name] = ["Required"] }
                return nil
            }
            guard let string = value as? String, !string.isEmpty else {
                problems[name] = ["Expected a non-empty string"]
                return nil
            }
            return string
        }
        func integer(_ name: String) -> Int? {
            guard let number = body[name] as? NSNumber, ![String: Any].isBoolean(number),
                  let value = Int(exactly: number.doubleValue) else {
                problems[name] = [body[name] == nil ? "Required" : "Expected an integer"]
                return nil
            }
            return value
        }
        let content = text("encryptedContent"), nonce = text("nonce"), salt = text("salt")
        let ownerToken = text("ownerToken"), authToken = text("authToken")
        let contentType = text("contentType")
        if let contentType, !Self.noteContentTypes.contains(contentType) {
            problems["contentType"] = ["Invalid enum value"]
        }
        let maxViews = integer("maxViews"), expireSec = integer("expireSec")
        if let maxViews, maxViews < 0 { problems["maxViews"] = ["Number must be greater than or equal to 0"] }
        if let expireSec, expireSec <= 0 { problems["expireSec"] = ["Number must be greater than 0"] }
        var hasPassword = false
        if let flag = body["hasPassword"], !(flag is NSNull) {
            if let number = flag as? NSNumber, [String: Any].isBoolean(number) { hasPassword = number.boolValue }
            else { problems["hasPassword"] = ["Expected boolean"] }
        }
        let passwordSalt = text("passwordSalt", required: false), passwordAlgo = text("passwordAlgo", required: false)
        // Upstream stores the tokens and decodes them when comparing; here
        // they must decode now, since only their hashes are kept.
        let ownerBytes = ownerToken.flatMap(Base64URL.decode)
        let authBytes = authToken.flatMap(Base64URL.decode)
        if ownerToken != nil && ownerBytes == nil { problems["ownerToken"] = ["Invalid base64url"] }
        if authToken != nil && authBytes == nil { problems["authToken"] = ["Invalid base64url"] }
        guard problems.isEmpty, let content, let nonce, let salt, let ownerBytes, let authBytes, let contentType,
              let maxViews, let expireSec else {
            return JSONResponse.make(["error": "Invalid request", "details": problems], status: .badRequest)
        }

        guard let contentBytes = SkysendEncoding.base64(content) else {
            throw HTTPErrorResponse(.badRequest, "Invalid encryptedContent encoding")
        }
        guard contentBytes.count <= configuration.noteMaxBytes + 256 else {
            throw HTTPErrorResponse(.payloadTooLarge, "Note content exceeds maximum size")
        }
        let saltBytes = try SkysendEncoding.salt(salt, "salt")
        guard let nonceBytes = SkysendEncoding.base64(nonce) else { throw HTTPErrorResponse(.badRequest, "Invalid nonce encoding") }
        guard nonceBytes.count == 12 else { throw HTTPErrorResponse(.badRequest, "Nonce must be exactly 12 bytes") }
        guard configuration.noteExpireOptions.contains(expireSec) else {
            throw HTTPErrorResponse(.badRequest, "Invalid expiry time. Must be one of the allowed options.")
        }
        guard configuration.noteViewOptions.contains(maxViews) else {
            throw HTTPErrorResponse(.badRequest, "Invalid view limit. Must be one of the allowed options.")
        }
        if hasPassword {
            try SkysendEncoding.checkPassword(salt: passwordSalt, algorithm: passwordAlgo,
                                              missing: "Password-protected notes require passwordSalt and passwordAlgo")
            // Kept and handed back to readers: bounded like the other fields.
            guard passwordAlgo.map({ $0.utf8.count <= 32 }) ?? true else {
                throw HTTPErrorResponse(.badRequest, "Password salt must be exactly 16 bytes")
            }
        }
        let now = Date()
        let note = SkysendNote(
            id: UUID().uuidString.lowercased(), authTokenHash: try SkysendNoteStore.tokenHash(authBytes),
            ownerTokenHash: try SkysendNoteStore.tokenHash(ownerBytes), salt: Base64URL.encode(saltBytes),
            encryptedContent: Data(contentBytes), nonce: Data(nonceBytes), contentType: contentType,
            passwordSalt: hasPassword ? passwordSalt : nil, passwordAlgo: hasPassword ? passwordAlgo : nil,
            maxViews: maxViews, expiresAt: now.addingTimeInterval(TimeInterval(expireSec)), createdAt: now)
        try store.skysendNotes.create(note)
        return JSONResponse.make(["id": note.id, "expiresAt": ISO8601Timestamp.format(note.expiresAt)], status: .created)
    }

    /// The note, or 404; 410 once it ended.
    private func availableNote(_ route: RouteRequest) throws -> SkysendNote {
        guard let note = try store.skysendNotes.note(id: route[parameter: "id"]) else {
            throw HTTPErrorResponse(.notFound, "Note not found")
        }
        if let ended = note.endReason(at: Date()) { throw Self.gone(ended) }
        return note
    }

    static func gone(_ ended: SkysendNoteStore.Ended) -> HTTPErrorResponse {
        HTTPErrorResponse(.gone, ended == .expired ? "Note has expired" : "View limit reached")
    }

    /// `GET /api/note/:id`: what a reader needs before decrypting; never the content.
    func noteInfo(_ route: RouteRequest) throws -> Response {
        let note = try availableNote(route)
        var answer: [String: Any] = [
            "id": note.id, "contentType": note.contentType, "hasPassword": note.hasPassword, "salt": note.salt,
            "maxViews": note.maxViews, "viewCount": note.viewCount,
            "expiresAt": ISO8601Timestamp.format(note.expiresAt), "createdAt": ISO8601Timestamp.format(note.createdAt),
        ]
        if note.hasPassword {
            answer["passwordAlgo"] = note.passwordAlgo
            answer["passwordSalt"] = note.passwordSalt
        }
        return JSONResponse.make(answer)
    }

    /// The `authToken` body field, or 400.
    private func presentedAuthToken(_ route: RouteRequest) throws -> String {
        guard let token = route.json["authToken"] as? String, !token.isEmpty else {
            throw HTTPErrorResponse(.badRequest, "Missing authToken in body")
        }
        return token
    }

    /// Whether `presented` (base64url) is the token whose hash is `stored`;
    /// nil when it doesn't decode. Compared in constant time.
    static func tokenMatches(_ presented: String, hash stored: String) throws -> Bool? {
        guard let bytes = Base64URL.decode(presented) else { return nil }
        return constantTimeEquals(Array(try SkysendNoteStore.tokenHash(bytes).utf8), Array(stored.utf8))
    }

    /// `POST /api/note/:id/view` `{authToken}`: the ciphertext, counted as one view.
    func viewNote(_ route: RouteRequest) throws -> Response {
        let token = try presentedAuthToken(route)
        let note = try availableNote(route)
        switch try Self.tokenMatches(token, hash: note.authTokenHash) {
        case nil: throw HTTPErrorResponse(.unauthorized, "Invalid auth token format")
        case false?: throw HTTPErrorResponse(.unauthorized, "Invalid auth token")
        case true?: break
        }
        switch try store.skysendNotes.view(id: note.id) {
        case .shown(let viewed):
            var response = JSONResponse.make([
                "encryptedContent": viewed.encryptedContent.base64EncodedString(),
                "nonce": viewed.nonce.base64EncodedString(), "viewCount": viewed.viewCount, "maxViews": viewed.maxViews,
            ])
            response.headers.set("Cache-Control", "no-store")
            return response
        case .ended(let ended): throw Self.gone(ended)
        case .notFound: throw HTTPErrorResponse(.notFound, "Note not found")
        }
    }

    /// `POST /api/note/:id/password` `{authToken}`: whether the token derived
    /// from a password is right. Ten failures from one address lock it out of
    /// this note for 15 minutes (429 with `Retry-After`).
    func checkNotePassword(_ route: RouteRequest) throws -> Response {
        let resource = "note:" + route[parameter: "id"]
        try refuseIfLockedOut(route, resource: resource)
        let token = try presentedAuthToken(route)
        guard let note = try store.skysendNotes.note(id: route[parameter: "id"]) else {
            throw HTTPErrorResponse(.notFound, "Note not found")
        }
        guard note.hasPassword else { throw HTTPErrorResponse(.badRequest, "Note is not password-protected") }
        if let ended = note.endReason(at: Date()) { throw Self.gone(ended) }
        return try passwordCheck(route, resource: resource, token: token, hash: note.authTokenHash)
    }

    /// `DELETE /api/note/:id` with `X-Owner-Token`.
    func deleteNote(_ route: RouteRequest) throws -> Response {
        // As upstream: a missing header is refused before the note is looked up.
        guard route.request.headers["X-Owner-Token"].map({ !$0.isEmpty }) ?? false else {
            throw HTTPErrorResponse(.unauthorized, "Missing X-Owner-Token header")
        }
        guard let note = try store.skysendNotes.note(id: route[parameter: "id"]) else {
            throw HTTPErrorResponse(.notFound, "Note not found")
        }
        try requireToken(route.request.headers["X-Owner-Token"], hash: note.ownerTokenHash, kind: "owner")
        try store.skysendNotes.delete(id: note.id)
        return JSONResponse.make(["ok": true])
    }
}
