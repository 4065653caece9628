import Foundation
import GRDB
import OpenSSLCrypto

/// What a tus upload was created with, kept in its session's options until
/// it finishes, then in ``TusUploadAttributes``.
public struct TusUploadTerms: Codable, Sendable, Equatable {
    /// `Upload-Metadata` as sent (already checked to parse).
    public var metadata: String?
    /// Created with `Upload-Defer-Length: 1` and no length declared since.
    public var lengthDeferred: Bool
    /// `Upload-Concat: partial`: only for concatenating into a final upload.
    public var partial: Bool

    public init(metadata: String?, lengthDeferred: Bool, partial: Bool) {
        self.metadata = metadata
        self.lengthDeferred = lengthDeferred
        self.partial = partial
    }
}

/// A finished tus upload's own attributes (`minihost_tus_uploads`).
public struct TusUploadAttributes: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "minihost_tus_uploads"

    public var uploadId: String
    public var metadata: String?
    public var partial: Bool
    /// For a final upload: the partial uploads' ids, space-separated, in order.
    public var concatenated: String?

    enum CodingKeys: String, CodingKey {
        case uploadId = "upload_id", metadata, partial, concatenated
    }
}

/// A tus upload as a request finds it.
public enum TusUpload: Sendable {
    /// Taking bytes: `offset` of them have been acknowledged, and the next
    /// write is chunk `nextIndex`.
    case open(UploadSession, TusUploadTerms, offset: Int64, nextIndex: Int64)
    /// A stored upload (the tus id is its id).
    case finished(Upload, TusUploadAttributes)
}

/// tus uploads on the core: each is a durable upload session written in
/// order (``MinihostStore/makeAppendWriter(sessionId:index:offset:capacity:)``)
/// that, once every byte is in, becomes a stored upload with the same id,
/// owned by the API client that created it.
public struct TusUploadStore: Sendable {
    let store: MinihostStore

    /// Opens an upload of `length` bytes (nil: deferred, reserved at `maxSize`).
    public func create(owner: Owner, length: Int64?, maxSize: Int64, terms: TusUploadTerms, fileName: String,
                       contentType: String, lifetime: TimeInterval) throws -> UploadSession {
        return try store.openSession(SessionRequest(owner: owner, fileName: fileName, contentType: contentType,
                                                    declaredSize: length ?? maxSize,
                                                    options: try UploadSession.encodeOptions(terms)),
                                     maxSize: maxSize, lifetime: lifetime)
    }

    /// An empty upload (`Upload-Length: 0`): finished as it is created.
    public func createEmpty(owner: Owner, terms: TusUploadTerms, fileName: String, contentType: String) throws -> Upload {
        let blob = try store.blobs.makeWriter().finish()
        return try record(blob, owner: owner, terms: terms, fileName: fileName, contentType: contentType, concatenated: nil)
    }

    /// The upload `id` of `owner`; nil when unknown, another owner's, or expired unfinished.
    public func upload(id: String, owner: Owner, now: Date = Date()) throws -> TusUpload? {
        try store.read { db in
            if let session = try UploadSession.fetchCached(db, id: id), session.state != .completed {
                guard session.owner == owner, session.expiresAt > now,
                      let terms = session.decodedOptions(as: TusUploadTerms.self) else { return nil }
                let position = try store.appendPosition(ofSession: id, db)
                return .open(session, terms, offset: position.offset, nextIndex: position.index)
            }
            guard let upload = try Upload.fetchOne(db, key: id), upload.owner == owner, upload.state == .ready,
                  let attributes = try TusUploadAttributes.fetchOne(db, key: id) else { return nil }
            return .finished(upload, attributes)
        }
    }

    /// Declares the length of an upload created with `Upload-Defer-Length`:
    /// the session's size and its terms in one write. Refused (`invalid`)
    /// below `offset`, the bytes already acknowledged.
    public func declareLength(sessionId: String, length: Int64, offset: Int64, maxSize: Int64) throws {
        guard length >= offset, length <= maxSize else { throw StorageError(.invalid, "length below the offset") }
        try store.db.write { db in
            guard let session = try UploadSession.fetchCached(db, id: sessionId), session.state == .open,
                  var terms = session.decodedOptions(as: TusUploadTerms.self) else {
                throw StorageError(.notFound, "upload session not found")
            }
            terms.lengthDeferred = false
            try db.execute(sql: "UPDATE minihost_upload_sessions SET declared_size = ?, options = ? WHERE id = ?",
                           arguments: [length, try UploadSession.encodeOptions(terms), sessionId])
        }
    }

    /// Turns a session whose bytes are all in into the stored upload with its
    /// id. nil while another call is finishing it.
    public func finish(_ session: UploadSession, terms: TusUploadTerms) throws -> Upload? {
        let outcome = try store.finishSession(id: session.id, owner: session.owner, configure: { upload in
            upload.id = session.id
        }, attach: { db, upload in
            try TusUploadAttributes(uploadId: upload.id, metadata: terms.metadata, partial: terms.partial,
                                    concatenated: nil).insert(db)
        })
        switch outcome {
        case .completed(let upload): return upload
        case .inProgress: return nil
        }
    }

    /// A final upload: the finished partial uploads `ids` of `owner`, in
    /// order, copied into one new upload. The partials stay (tus lets a
    /// partial be used again); they are the owner's to delete.
    public func concatenate(owner: Owner, ids: [String], maxSize: Int64, terms: TusUploadTerms, fileName: String,
                            contentType: String) throws -> Upload {
        var partials: [Upload] = []
        for id in ids {
            guard case .finished(let upload, let attributes)? = try upload(id: id, owner: owner), attributes.partial else {
                throw StorageError(.invalid, "\(id) is not a finished partial upload of this client")
            }
            partials.append(upload)
        }
        guard partials.reduce(Int64(0), { $0 + $1.size }) <= maxSize else {
            throw StorageError(.quotaExceeded, "the partial uploads together exceed \(maxSize) bytes")
        }
        let writer = try store.blobs.makeWriter()
        do {
            for partial in partials {
                try SessionFile.readFile(store.blobs.path(for: partial.sha256), count: partial.size, what: "partial upload") {
                    try writer.write($0)
                }
            }
        } catch {
            writer.abandon()
            throw error
        }
        return try record(try writer.finish(), owner: owner, terms: terms, fileName: fileName, contentType: contentType,
                          concatenated: ids.joined(separator: " "))
    }

    private func record(_ blob: CompletedBlob, owner: Owner, terms: TusUploadTerms, fileName: String, contentType: String,
                        concatenated: String?) throws -> Upload {
        try store.commitUpload(blob, owner: owner, fileName: fileName, contentType: contentType, configure: { _ in },
                               alsoInTransaction: { db, upload in
            try TusUploadAttributes(uploadId: upload.id, metadata: terms.metadata, partial: terms.partial,
                                    concatenated: concatenated).insert(db)
        })
    }

    /// Ends an upload, finished or not: its session and bytes, or its row
    /// (the blob goes when nothing else references it). False if there was none.
    public func terminate(id: String, owner: Owner) throws -> Bool {
        switch try upload(id: id, owner: owner) {
        case nil:
            return false
        case .open(let session, _, _, _)?:
            return try store.cancelSession(id: session.id, owner: owner)
        case .finished(let upload, _)?:
            try store.purge(uploadId: upload.id, owner: owner)
            return true
        }
    }
}

extension MinihostStore {
    /// tus uploads.
    public var tusUploads: TusUploadStore { TusUploadStore(store: self) }
}
