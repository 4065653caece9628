import Foundation
import GRDB

/// The plain dialect's attributes of an upload, beside the core's row
/// (`minihost_plain_uploads`): the folder it is filed in, and how its links behave.
public struct PlainUploadAttributes: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "minihost_plain_uploads"

    public var uploadId: String
    public var folderId: Int64?
    /// Serve the Raw link as an attachment.
    public var forceDownload = false
    /// The Link goes straight to the bytes, not the HTML page.
    public var skipEmbeddedPage = false

    public init(uploadId: String = "", folderId: Int64? = nil, forceDownload: Bool = false, skipEmbeddedPage: Bool = false) {
        self.uploadId = uploadId
        self.folderId = folderId
        self.forceDownload = forceDownload
        self.skipEmbeddedPage = skipEmbeddedPage
    }

    enum CodingKeys: String, CodingKey {
        case uploadId = "upload_id", folderId = "folder_id", forceDownload = "force_download"
        case skipEmbeddedPage = "skip_embedded_page"
    }
}

/// A plain-dialect upload: the core row and its attributes.
public struct PlainUpload: Sendable, Equatable {
    public var upload: Upload
    public var attributes: PlainUploadAttributes
}

/// The plain dialect's uploads. Every one is a core upload (owned by a
/// user) with a row of ``PlainUploadAttributes`` written in the same
/// transaction, so neither exists without the other.
public struct PlainUploadStore: Sendable {
    let store: MinihostStore

    /// Records a received file for `user`, filed in `folderId`, within the user's quota.
    public func commit(_ file: CompletedBlob, user: User, fileName: String, contentType: String,
                       attributes: PlainUploadAttributes, configure: (inout Upload) throws -> Void = { _ in }) throws -> PlainUpload {
        var saved = attributes
        let upload = try store.commitUpload(file, owner: user.owner, fileName: fileName, contentType: contentType,
                                            quotaBytes: user.quotaBytes, configure: configure) { db, upload in
            saved.uploadId = upload.id
            try saved.insert(db)
        }
        return PlainUpload(upload: upload, attributes: saved)
    }

    /// Opens a resumable upload to be filed in `folderId` (kept in the
    /// session's options until finish).
    public func openSession(_ request: SessionRequest, folderId: Int64?, maxSize: Int64, quotaBytes: Int64?,
                            lifetime: TimeInterval) throws -> UploadSession {
        var request = request
        if let folderId { request.options = "{\"folderId\":\(folderId)}" }
        return try store.openSession(request, maxSize: maxSize, quotaBytes: quotaBytes, lifetime: lifetime)
    }

    /// Finishes a session into a plain upload. `attributes.folderId` nil
    /// keeps the folder the session was opened for.
    public func finishSession(id: String, owner: Owner, attributes: PlainUploadAttributes,
                              configure: (inout Upload) throws -> Void = { _ in }) throws -> PlainSessionFinish {
        let outcome = try store.finishSession(id: id, owner: owner, configure: configure) { db, upload in
            var saved = attributes
            saved.uploadId = upload.id
            if saved.folderId == nil, let session = try UploadSession.fetchCached(db, id: id) {
                saved.folderId = Self.folderId(inOptions: session.options)
            }
            try saved.insert(db)
        }
        switch outcome {
        case .inProgress: return .inProgress
        case .completed(let upload): return .completed(try plainUpload(upload))
        }
    }

    /// A ready plain upload by its public link id.
    public func upload(publicId: String) throws -> PlainUpload? {
        guard let upload = try store.upload(publicId: publicId) else { return nil }
        return try plainUpload(upload)
    }

    /// The attributes of `upload` (defaults for an upload of another dialect).
    public func plainUpload(_ upload: Upload) throws -> PlainUpload {
        let attributes = try store.db.readSingleStatement { db in
            try PlainUploadAttributes.fetchOne(db.cachedStatement(sql: "SELECT * FROM minihost_plain_uploads WHERE upload_id = ?"),
                                               arguments: [upload.id])
        }
        return PlainUpload(upload: upload, attributes: attributes ?? PlainUploadAttributes(uploadId: upload.id))
    }

    static func folderId(inOptions options: String?) -> Int64? {
        guard let options, let data = options.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return (object["folderId"] as? NSNumber)?.int64Value
    }
}

/// What finishing a plain session found.
public enum PlainSessionFinish: Sendable, Equatable {
    case completed(PlainUpload)
    case inProgress
}
