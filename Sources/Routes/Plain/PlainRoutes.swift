import Foundation
import HTTPCore
import OpenSSLCrypto
import Store

/// The plain dialect (`plain-script-endpoints.txt`): username + password in
/// the body, secondary passwords scoped to folders, plain-text answers for
/// curl (`ERR …`), except where the spec answers JSON.
struct PlainRoutes: DialectRoutes, ContextRoutes {
    let context: ServerContext

    init(_ context: ServerContext) { self.context = context }

    /// The spec's words when username or password is missing, per route.
    static let missingFields = HTTPErrorResponse(.badRequest, "Missing fields")
    static let missingCredentials = HTTPErrorResponse(.badRequest, "Missing username or password")
    static let invalidCredentials = HTTPErrorResponse(.unauthorized, "Invalid credentials")

    static let api = "plain"

    static func register(in table: inout RouteTable, configuration: ServerConfiguration) {
        let maxChunkMB = configuration.maxChunkBytes >> 20
        // Answers in JSON, as the spec documents them.
        table.group(.json, prefix: "/api", limit: .credentials) { api in
            api.add("POST", "/getMe", auth: .accountPassword(missing: missingCredentials), body: .form()) {
                try Self($0.server).getMe($0)
            }
            api.add("POST", "/secondaryPasswords/createFromPrimary", auth: .accountPassword(missing: missingCredentials),
                    body: .form()) { try Self($0.server).createFromPrimary($0) }
            // Anyone may send one: nginx buffers the body, so a slow sender holds no worker thread.
            api.add("POST", "/basicHTMLUpload", auth: .accountPassword(missing: invalidCredentials),
                    body: .multipart(limit: configuration.maxUploadBytes, streamed: false,
                                     tooLarge: "File too large (max \(configuration.maxUploadMB) MB)")) {
                try Self($0.server).basicUpload($0)
            }
        }
        // Plain-text answers for scripts.
        table.group(.plainText, prefix: "/api", limit: .credentials) { text in
            text.add("POST", "/cliCheckCredentials", body: .form()) { try Self($0.server).checkCredentials($0) }
            text.add("POST", "/initChunkedUploadPlain", auth: .accountPassword(missing: missingFields), body: .form()) {
                try Self($0.server).initChunked($0)
            }
            text.add("POST", "/finishChunkedUploadPlain", auth: .accountPassword(missing: missingFields), body: .form()) {
                try Self($0.server).finishChunked($0)
            }
            // No credentials, as upstream: the 128-bit session id is the capability,
            // checked before the body is read, so chunks may stream.
            text.add("POST", "/uploadChunkPlain",
                     body: .multipart(limit: configuration.maxChunkBytes, streamed: true,
                                      tooLarge: "Chunk too large (max \(maxChunkMB) MB)"),
                     limit: .chunk) { try Self($0.server).uploadChunk($0) }
            text.add("GET", "/chunkedUploadStatusPlain", limit: .api) { try Self($0.server).chunkStatus($0) }
        }
        registerLinks(in: &table)
    }

    /// `POST /api/getMe`: who the credential is, and a secondary's permissions.
    func getMe(_ route: RouteRequest) throws -> Response {
        let credential = route.identity(AccountCredential.self)
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

    /// `POST /api/cliCheckCredentials`: `VALID`, `INVALID` (401) or `MISSING`
    /// (400). The check is the answer, so it runs here, not as the route's auth.
    func checkCredentials(_ route: RouteRequest) throws -> Response {
        do {
            guard try context.accountCredential(route.fields, route.request) != nil else {
                return PlainTextResponse.make("MISSING", status: .badRequest)
            }
            return PlainTextResponse.make("VALID")
        } catch let error as HTTPErrorResponse where error.status == .unauthorized {
            return PlainTextResponse.make("INVALID", status: .unauthorized)
        }
    }

    /// `POST /api/secondaryPasswords/createFromPrimary`: a new secondary
    /// password, only with the primary one. Fields: `label`, `folderIdScope`,
    /// `canListFiles`, `canEditFiles`.
    func createFromPrimary(_ route: RouteRequest) throws -> Response {
        let fields = route.fields
        guard case .primary(let user) = route.identity(AccountCredential.self) else {
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
            try store.accounts.createSecondaryPassword(username: user.username, label: label, options: options,
                                              hasher: context.passwordHasher)
        }
        return JSONResponse.make([
            "ok": true, "username": user.username, "label": record.label, "password": password,
            "folderIdScope": record.folderScopeId.map { $0 as Any } ?? NSNull(),
            "canListFiles": record.canList, "canEditFiles": record.canEdit,
        ])
    }
}
