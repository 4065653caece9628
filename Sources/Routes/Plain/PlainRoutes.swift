import Foundation
import HTTPCore
import OpenSSLCrypto
import Store

/// The plain dialect (`plain-script-endpoints.txt`): username + password in
/// the body, secondary passwords scoped to folders, plain-text answers for
/// curl.
struct PlainRoutes {
    let context: ServerContext

    var store: MinihostStore { context.store }

    func register(in builder: inout RouterBuilder) {
        builder.add("POST", "/api/getMe") { request, _ in try getMe(request) }
        builder.add("POST", "/api/cliCheckCredentials", errors: PlainTextResponse.error) { request, _ in
            try checkCredentials(request)
        }
        builder.add("POST", "/api/secondaryPasswords/createFromPrimary") { request, _ in
            try createFromPrimary(request)
        }
        builder.add("POST", "/api/basicHTMLUpload") { request, _ in try basicUpload(request) }
        registerChunked(in: &builder)
        registerLinks(in: &builder)
    }

    /// The credential in `fields`; nil when username or password is missing.
    /// Throws 401 for a wrong one. Recently verified credentials skip scrypt
    /// (see ``VerifiedCredentialCache``).
    func credential(_ fields: [String: String], _ request: Request) throws -> AccountCredential? {
        guard let username = fields["username"], let password = fields["password"],
              !username.isEmpty, !password.isEmpty else { return nil }
        let cache = context.verifiedCredentials
        if let recent = cache.account(username: username, password: password) {
            if let credential = try store.revalidate(recent) { return credential }
            cache.forget(username: username, password: password)
        }
        let found = try context.passwordHashing.run { () throws -> AccountCredential? in
            // Waiting may have taken a while: the client may be gone, or a
            // request with the same credentials (a script's parallel lanes)
            // may have verified them meanwhile. Either way, no scrypt.
            if request.isAbandoned() { throw ClientGone() }
            if let recent = cache.account(username: username, password: password),
               let credential = try store.revalidate(recent) { return credential }
            return try store.verifyAccount(username: username, password: password, decoyHash: context.decoyPasswordHash)
        }
        guard let found else { throw HTTPErrorResponse(.unauthorized, "Invalid credentials") }
        cache.remember(username: username, password: password, as: VerifiedAccount(found))
        return found
    }

    /// `POST /api/getMe`: who the credential is, and a secondary's permissions.
    func getMe(_ request: Request) throws -> Response {
        guard let credential = try credential(try request.formFields(), request) else {
            throw HTTPErrorResponse(.badRequest, "Missing username or password")
        }
        var answer: [String: Any] = ["ok": true, "username": credential.user.username]
        switch credential {
        case .primary:
            answer["mode"] = "primary"
        case .secondary(_, let secondary):
            answer["mode"] = "secondary"
            answer["secondaryLabel"] = secondary.label
            answer["secondaryFolderScopeId"] = secondary.folderScopeId.map { $0 as Any } ?? NSNull()
            answer["secondaryCanListFiles"] = secondary.canList
            answer["secondaryCanEditFiles"] = secondary.canEdit
            answer["secondaryIsApiKey"] = secondary.isApiKey
        }
        return JSONResponse.make(answer)
    }

    /// `POST /api/cliCheckCredentials`: `VALID`, `INVALID` (401) or `MISSING` (400).
    func checkCredentials(_ request: Request) throws -> Response {
        let fields = try request.formFields()
        do {
            guard try credential(fields, request) != nil else { return PlainTextResponse.make("MISSING", status: .badRequest) }
            return PlainTextResponse.make("VALID")
        } catch let error as HTTPErrorResponse where error.status == .unauthorized {
            return PlainTextResponse.make("INVALID", status: .unauthorized)
        }
    }

    /// `POST /api/secondaryPasswords/createFromPrimary`: a new secondary
    /// password, only with the primary one. Fields: `label`, `folderIdScope`,
    /// `canListFiles`, `canEditFiles`.
    func createFromPrimary(_ request: Request) throws -> Response {
        let fields = try request.formFields()
        guard let credential = try credential(fields, request) else {
            throw HTTPErrorResponse(.badRequest, "Missing username or password")
        }
        guard case .primary(let user) = credential else {
            throw HTTPErrorResponse(.forbidden, "The primary password is required to create secondary passwords")
        }
        var scope: Int64?
        if let text = fields["folderIdScope"], !text.isEmpty {
            guard let id = Int64(text), id > 0 else { throw HTTPErrorResponse(.badRequest, "folderIdScope must be a folder id") }
            scope = id
        }
        // Unnamed passwords get a random suffix so two of them don't collide.
        let label = try fields["label"].flatMap { $0.isEmpty ? nil : $0 } ?? "automation-\(SecureRandom.hex(byteCount: 3))"
        let options = SecondaryPasswordOptions(folderScopeId: scope, canList: FormFlag.isTrue(fields["canListFiles"]),
                                               canEdit: FormFlag.isTrue(fields["canEditFiles"]))
        let (record, password) = try context.passwordHashing.run {
            try store.createSecondaryPassword(username: user.username, label: label, options: options,
                                              hasher: context.passwordHasher)
        }
        return JSONResponse.make([
            "ok": true, "username": user.username, "label": record.label, "password": password,
            "folderIdScope": record.folderScopeId.map { $0 as Any } ?? NSNull(),
            "canListFiles": record.canList, "canEditFiles": record.canEdit,
        ])
    }
}
