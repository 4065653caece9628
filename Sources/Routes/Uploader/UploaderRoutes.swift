import Foundation
import HTTPCore
import Store

/// The uploader dialect (`file-uploader-api.txt`, File Uploader's FastAPI
/// server): anonymous or account uploads with a delete key, bearer access
/// tokens, public serving at `/file/<file_url>` and `/f/<file_url>`. Also
/// what its PyPI client (`fileuploader` 0.1.3.6) calls: `/api/upload/private`,
/// `/api/login/token`, `/api/transfer`.
///
/// Answers are `{"status": "success", …}`; errors `{"status": "error",
/// "message": …}` with the documented `errorId` where there is one, and the
/// token errors of section 1.1 as `{"status": "error", "auth_error": {…}}`.
struct UploaderRoutes: DialectRoutes, ContextRoutes {
    let context: ServerContext

    init(_ context: ServerContext) { self.context = context }

    var configuration: UploaderConfiguration { context.configuration.uploader }

    static let api = "uploader"

    /// An error with the document's `errorId`.
    static func error(_ status: HTTPStatus, _ errorId: Int, _ message: String) -> HTTPErrorResponse {
        HTTPErrorResponse(status, message, code: String(errorId))
    }

    static let dialect = Dialect(name: "uploader") { answer in
        var object: [String: Any] = ["status": "error"]
        let errorId = answer.code.flatMap { Int($0) }
        if answer.details[UploaderAuth.marker] != nil, let errorId {
            object["auth_error"] = ["message": answer.message, "errorId": errorId]
        } else {
            object["message"] = answer.message
            if let errorId { object["errorId"] = errorId }
        }
        var response = JSONResponse.make(object, status: answer.status)
        response.headers.set("Cache-Control", "no-store")
        return response
    }

    /// `file_url`: 10 characters as upstream, here 60 random bits (base64url),
    /// with the file's extension after it when asked for.
    static let fileURL = ParameterConstraint.characters(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", count: 10...10, extension: true,
        regexClass: "A-Za-z0-9_-", example: "4yn-8yjhsu")

    /// Files may be deleted with their key, so shared caches keep them only briefly.
    static let cacheControl = "public, max-age=300"

    /// As documented: uploads 2 a minute per address (with room for a burst),
    /// streamed, 16 at once.
    static let uploadLimit = RateLimit(zone: "uploader_upload", rate: "2r/m", burst: 10, connections: 16)

    static func register(in table: inout RouteTable, configuration: ServerConfiguration) {
        let uploader = configuration.uploader
        // Accounts: 10 a minute per address, as documented (each is a scrypt).
        table.group(dialect, prefix: "/api", limit: .login) { accounts in
            accounts.add("POST", "/register", body: .json(optional: true)) { try Self($0.server).register($0) }
            accounts.add("POST", "/login", body: .json(optional: true)) { try Self($0.server).login($0) }
            accounts.add("POST", "/refresh_token", body: .json(optional: true)) { try Self($0.server).refreshToken($0) }
            accounts.add("POST", "/logout", auth: UploaderAuth.token) { try Self($0.server).logout($0) }
        }
        table.group(dialect, prefix: "/api", limit: .api) { api in
            api.add("GET", "/login/token", auth: UploaderAuth.token) { try Self($0.server).loginWithToken($0) }
            api.add("POST", "/transfer", auth: UploaderAuth.token, body: .json()) { try Self($0.server).transfer($0) }
            api.add("GET", "/get_files", auth: UploaderAuth.token) { try Self($0.server).listFiles($0) }
            api.add("GET", "/getFiles", auth: UploaderAuth.token) { try Self($0.server).listFiles($0) }
            api.add("GET", "/delete/:file_url", constraints: ["file_url": fileURL]) { try Self($0.server).delete($0) }
        }
        // Anyone may upload; the token, if any, is checked in the handler
        // (an invalid one still uploads, anonymously). Streamed: a 100 MB
        // body buffered by nginx would be written to disk twice.
        let body = BodyPolicy.multipart(limit: uploader.maxUploadBytes, streamed: true,
                                        tooLarge: "File size exceeds the limit (\(uploader.maxUploadMB)MB)")
        table.group(dialect, prefix: "/api", limit: uploadLimit) { uploads in
            uploads.add("POST", "/upload", body: body) { try Self($0.server).upload($0) }
            uploads.add("POST", "/upload/:group", body: body) { try Self($0.server).upload($0) }
        }
        // The files, answered by nginx alone from the public tree unless a
        // download limit makes each one count.
        table.group(dialect, limit: .none) { files in
            let file = PublicFile(tree: .links, cacheControl: cacheControl)
            for prefix in ["/file", "/f"] {
                files.add("GET", "\(prefix)/:file_url", constraints: ["file_url": fileURL], onContentOrigin: true,
                          publicFile: file) { try Self($0.server).serve($0) }
            }
        }
    }
}
