import Foundation
import HTTPCore
import OpenSSLCrypto
import Store

extension UploaderRoutes {
    /// The id part of a `file_url` (`abc.mp4` → `abc`).
    static func idPart(of fileURL: String) -> String {
        fileURL.firstASCIIIndex(of: ".").map { String(fileURL[..<$0]) } ?? fileURL
    }

    /// The extension the API reports (`.mp4`), or nil when the name has none
    /// we can put in a URL: 1-16 letters or digits after the last dot.
    static func fileExtension(_ fileName: String) -> String? {
        guard let dot = fileName.lastIndex(of: "."), dot != fileName.startIndex else { return nil }
        let ext = fileName[fileName.index(after: dot)...]
        let isLetterOrDigit = { (byte: UInt8) in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
        }
        guard (1...16).contains(ext.utf8.count), ext.utf8.allSatisfy(isLetterOrDigit) else { return nil }
        return "." + ext
    }

    /// `POST /api/upload[/private]?include_ext=&max_uses=`: multipart field
    /// `file`, streamed to disk. A valid token files it in the account
    /// (`synced`); without one it is anonymous, and an invalid one also
    /// uploads anonymously, the reason in `auth_error`.
    func upload(_ route: RouteRequest) throws -> Response {
        let request = route.request
        if let group = route.parameters["group"], group != "private" {
            // Groups aren't served; `private` is the client library's "no group".
            throw HTTPErrorResponse(.notFound, "Group not found")
        }
        let includeExtension = FormFlag.isTrue(request.query["include_ext"])
        var maxUses: Int?
        if let text = request.query["max_uses"], !text.isEmpty {
            guard let value = Int(text), (1...10_000).contains(value) else {
                throw HTTPErrorResponse(.badRequest, "max_uses must be a whole number from 1 to 10000")
            }
            maxUses = value
        }
        var owner = UploaderStore.anonymous
        var authError: [String: Any] = [:]
        // No header is no error: an anonymous upload. A header that fails
        // still uploads, anonymously, saying why.
        do {
            if let header = request.headers["Authorization"] {
                owner = try UploaderAuth.identity(header, store: store).user.owner
            }
        } catch let error as HTTPErrorResponse where error.details[UploaderAuth.marker] != nil {
            authError = ["message": error.publicMessage, "errorId": Int(error.code ?? "") ?? 0]
        }
        var receiver = FileUploadReceiver(maxBytes: configuration.maxUploadBytes)
        receiver.missingFile = { HTTPErrorResponse(.badRequest, "No file uploaded") }
        // The name arrives before the bytes: a name without an extension is
        // refused before anything is stored.
        let received = try receiver.receive(
            request, into: store,
            tooLarge: HTTPErrorResponse(.payloadTooLarge, "File size exceeds the limit (\(configuration.maxUploadMB)MB)")
        ) { headers, _ in
            guard Self.fileExtension(DisplayName.sanitize(headers.fileName)) != nil else {
                throw HTTPErrorResponse(.badRequest, "Bad file extension")
            }
        }
        let ext = Self.fileExtension(received.fileName) ?? ""
        let contentType = received.contentType == "application/octet-stream"
            ? MediaTypeGuess.forFileName(received.fileName) : received.contentType
        let id = String(Base64URL.encode(try SecureRandom.bytes(8)).prefix(10))
        let file = try store.uploader.commit(received.blob, owner: owner, fileName: received.fileName,
                                             contentType: contentType, ext: ext, fileURL: id, maxDownloads: maxUses)
        var answer = try fileJSON(file, request, fileURL: includeExtension ? id + ext : id)
        answer["status"] = "success"
        answer["message"] = "File uploaded successfully"
        answer["auth_error"] = authError
        answer["size"] = file.upload.size
        answer["craeted_at"] = file.upload.createdAt.timeIntervalSince1970  // the client library's spelling
        return JSONResponse.make(answer)
    }

    /// The fields a file is described by in uploads and listings.
    private func fileJSON(_ file: UploaderFile, _ request: Request, fileURL: String? = nil) throws -> [String: Any] {
        let url = fileURL ?? file.upload.publicId ?? ""
        return [
            "file_url": url,
            "file_url_full": "\(context.contentOrigin(for: request))/file/\(url)",
            "key": try UploaderDeleteKey.key(for: file.upload.id, signingKey: context.operatorCookie.signingKey),
            "ext": file.ext,
            "user_filename": file.upload.fileName,
            "synced": file.synced,
        ]
    }

    /// `GET /api/get_files` (and the deprecated `/api/getFiles`): the
    /// account's files, newest first.
    func listFiles(_ route: RouteRequest) throws -> Response {
        let identity = route.identity(UploaderIdentity.self)
        let files = try store.uploader.files(of: identity.user.username).filter { !$0.upload.hasEnded(at: Date()) }
        let data = try files.map { file -> [String: Any] in
            var entry = try fileJSON(file, route.request)
            entry["creation_date"] = Self.creationDate(file.upload.createdAt)
            entry["size"] = file.upload.size
            return entry
        }
        return JSONResponse.make(["status": "success", "message": "files got successfully",
                                  "username": identity.user.username, "data": data])
    }

    /// `1.1.1971`, as the document shows dates (day.month.year, UTC).
    static func creationDate(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.day, .month, .year], from: date)
        return "\(parts.day ?? 1).\(parts.month ?? 1).\(parts.year ?? 1970)"
    }

    /// `GET /api/delete/<file_url>?key=`: 404 for no such file, 400 for a
    /// wrong key (compared in constant time). Answers once nginx can no
    /// longer serve the file.
    func delete(_ route: RouteRequest) throws -> Response {
        guard let file = try store.uploader.file(fileURL: Self.idPart(of: route[parameter: "file_url"])),
              !file.upload.hasEnded(at: Date()) else {
            throw HTTPErrorResponse(.notFound, "File not found")
        }
        guard let key = route.request.query["key"],
              try UploaderDeleteKey.matches(key, uploadId: file.upload.id, signingKey: context.operatorCookie.signingKey) else {
            throw HTTPErrorResponse(.badRequest, "Invalid unique key")
        }
        guard try store.uploader.delete(file) else { throw HTTPErrorResponse(.notFound, "File not found") }
        return JSONResponse.make(["status": "success", "message": "File deleted successfully"])
    }

    /// `GET /file/<file_url>` and `/f/<file_url>`: known types inline (under
    /// ``StoredContent``'s rules), others as attachments. A file with
    /// `max_uses` counts each download here, atomically, and is never cached.
    func serve(_ route: RouteRequest) throws -> Response {
        let notFound = HTTPErrorResponse(.notFound, "File not found")
        guard let file = try store.uploader.file(fileURL: Self.idPart(of: route[parameter: "file_url"])) else { throw notFound }
        var upload = file.upload
        var cacheControl = Self.cacheControl
        if upload.maxDownloads != nil || upload.expiresAt != nil {
            cacheControl = "no-store"
            if route.request.method == "HEAD" {
                guard !upload.hasEnded(at: Date()) else { throw notFound }
            } else {
                guard case .granted(let counted) = try store.claimDownload(uploadId: upload.id) else { throw notFound }
                upload = counted
            }
        }
        return StoredContent.response(upload, store: store, request: route.request, disposition: .inline,
                                      cacheControl: cacheControl)
    }
}
