import Foundation
import GRDB
import OpenSSLCrypto

/// What a follow-up does to an upload's app data, applied in one transaction.
public struct AppDataChange {
    public enum HandledAt {
        case unchanged, set(Date), cleared
    }

    /// Keys merged into the stored JSON object (a key's new value replaces the old).
    public var payloadPatch: [String: Any]?
    public var handledAt: HandledAt
    /// Another upload of the same owner to purge in the same transaction.
    public var replacesUploadId: String?

    public init(payloadPatch: [String: Any]? = nil, handledAt: HandledAt = .unchanged, replacesUploadId: String? = nil) {
        self.payloadPatch = payloadPatch
        self.handledAt = handledAt
        self.replacesUploadId = replacesUploadId
    }
}

extension MinihostStore {
    /// Records a finished upload: places its blob and inserts its row in one
    /// write, so a row never exists without its complete blob. On failure the
    /// temporary file is removed and nothing is recorded.
    ///
    /// With `quotaBytes`, the owner's stored and reserved bytes plus this file
    /// must fit, checked in the same transaction (`quotaExceeded` otherwise).
    public func commitUpload(_ file: CompletedBlob, owner: Owner, fileName: String, contentType: String,
                             now: Date = Date(), quotaBytes: Int64? = nil,
                             configure: (inout Upload) throws -> Void = { _ in }) throws -> Upload {
        try commitUpload(file, owner: owner, fileName: fileName, contentType: contentType, now: now, quotaBytes: quotaBytes,
                         configure: configure, alsoInTransaction: { _, _ in })
    }

    /// ``commitUpload(_:owner:fileName:contentType:now:quotaBytes:configure:)``
    /// that also runs `alsoInTransaction` in the recording transaction (a
    /// side store's row, a session's completion).
    func commitUpload(_ file: CompletedBlob, owner: Owner, fileName: String, contentType: String,
                      now: Date = Date(), quotaBytes: Int64? = nil, configure: (inout Upload) throws -> Void,
                      alsoInTransaction: (Database, Upload) throws -> Void) throws -> Upload {
        var upload = Upload(
            id: try SecureRandom.hex(byteCount: 16), ownerKind: owner.kind.rawValue, ownerId: owner.id,
            fileName: fileName, contentType: contentType, size: file.size, sha256: file.sha256,
            blob: file.sha256, state: .ready, createdAt: now, finishedAt: now, purgedAt: nil,
            appPayload: nil, appHandledAt: nil, expiresAt: nil, maxDownloads: nil, downloadCount: 0,
            passwordHash: nil, publicId: nil)
        let placed: Bool
        do {
            try configure(&upload)
            let record = upload
            placed = try writeImmediately { db in
                if let quotaBytes, try Self.bytesUsed(by: owner, now: now, db) + file.size > quotaBytes {
                    throw StorageError(.quotaExceeded, "storage limit exceeded")
                }
                let placed = try blobs.place(file)
                try record.insert(db)
                try alsoInTransaction(db, record)
                if record.publicId != nil { try Self.bumpPublicGeneration(db) }
                return placed
            }
        } catch {
            file.discard()
            throw error
        }
        if !placed { file.discardInBackground() }
        if let publicId = upload.publicId, Self.isUnconditional(upload) {
            publicTree.publish(.links, PublicTree.Link(id: publicId, contentType: upload.contentType), blob: upload.sha256, blobs: blobs)
        }
        return upload
    }

    /// The owner's upload in any state, or nil (also for another owner's id).
    public func upload(id: String, owner: Owner) throws -> Upload? {
        try readSingleStatement { try ownedUpload(id, owner, $0) }
    }

    /// A ready upload by its public link id (plain dialect).
    public func upload(publicId: String) throws -> Upload? {
        try readSingleStatement { db in
            try Upload.fetchOne(db.cachedStatement(sql: "SELECT * FROM minihost_uploads WHERE public_id = ? AND state = 'ready'"),
                                arguments: [publicId])
        }
    }

    /// Any upload by id, for operators.
    public func upload(id: String) throws -> Upload? {
        try read { try Upload.fetchOne($0.cachedStatement(sql: "SELECT * FROM minihost_uploads WHERE id = ?"), arguments: [id]) }
    }

    /// Applies a follow-up atomically: a concurrent follow-up sees either none
    /// or all of it, and no merge is lost.
    public func applyAppDataChange(_ change: AppDataChange, uploadId: String, owner: Owner,
                                   now: Date = Date()) throws -> Upload {
        try writeReleasingBlobs { db, released in
            guard var upload = try ownedUpload(uploadId, owner, db), upload.state == .ready else {
                throw StorageError(.notFound, "upload not found")
            }
            if let replaced = change.replacesUploadId {
                guard replaced != uploadId, let old = try ownedUpload(replaced, owner, db), old.state == .ready else {
                    throw StorageError(.notFound, "replaced upload not found")
                }
                try purgeRow(old, now: now, db, into: &released)
            }
            if let patch = change.payloadPatch {
                var payload = Self.decodePayload(upload.appPayload)
                for (key, value) in patch { payload[key] = value }
                upload.appPayload = try Self.encodePayload(payload)
            }
            switch change.handledAt {
            case .unchanged: break
            case .set(let date): upload.appHandledAt = date
            case .cleared: upload.appHandledAt = nil
            }
            try upload.update(db)
            return upload
        }
    }

    /// Purges the owner's upload: the row stays (state `purged`, for the audit
    /// trail), its publication goes, and its blob goes when nothing else uses it.
    public func purge(uploadId: String, owner: Owner, now: Date = Date()) throws {
        try writeReleasingBlobs { db, released in
            guard let upload = try ownedUpload(uploadId, owner, db), upload.state == .ready else {
                throw StorageError(.notFound, "upload not found")
            }
            try purgeRow(upload, now: now, db, into: &released)
        }
    }

    /// Purges ready uploads of one owner kind, created before `cutoff`, that
    /// no app marked handled. "Handled" is an API-client notion: other kinds
    /// never set it, so the kind is named by the caller and never implied.
    /// Returns how many were found and how many were purged.
    public func purgeUnhandled(ownerKind: Owner.Kind, createdBefore cutoff: Date,
                               now: Date = Date()) throws -> (candidates: Int, purged: Int) {
        try writeReleasingBlobs { db, released in
            let stale = try Upload
                .filter(Column("owner_kind") == ownerKind.rawValue && Column("state") == Upload.State.ready.rawValue
                        && Column("app_handled_at") == nil && Column("created_at") < cutoff)
                .fetchAll(db)
            for upload in stale {
                try purgeRow(upload, now: now, db, into: &released)
            }
            return (candidates: stale.count, purged: stale.count)
        }
    }

    /// Marks the owner's ready upload published or unpublished. Unpublishing
    /// removes its public link before the commit and returns once nginx can
    /// no longer serve it; publishing makes the link after (see ``PublicTree``).
    public func setPublication(uploadId: String, owner: Owner, status: Publication.Status,
                               now: Date = Date()) throws -> Publication {
        let (publication, upload, unlinked) = try write { db in
            guard let upload = try ownedUpload(uploadId, owner, db), upload.state == .ready else {
                throw StorageError(.notFound, "upload not found")
            }
            var publication = try Publication.fetchOne(db, key: uploadId)
                ?? Publication(uploadId: uploadId, status: status, publishedAt: nil, updatedAt: now)
            publication.status = status
            publication.updatedAt = now
            if status == .published { publication.publishedAt = now }
            try publication.save(db)
            try Self.bumpPublicGeneration(db)
            let unlinked = status == .unpublished
                && publicTree.unpublish(.cache, PublicTree.Link(id: uploadId, contentType: upload.contentType))
            #if DEBUG
            // The link is gone, the row still says published.
            if status == .unpublished { TestCrashPoint.reached("unpublish-before-commit") }
            #endif
            return (publication, upload, unlinked)
        }
        if unlinked { waitOutUnlinkGrace() }
        if status == .published, let blob = upload.blob, Self.isUnconditional(upload) {
            publicTree.publish(.cache, PublicTree.Link(id: uploadId, contentType: upload.contentType), blob: blob, blobs: blobs)
        }
        return publication
    }

    /// The upload behind a public cache URL: only ready and published ones.
    public func publishedUpload(id: String) throws -> Upload? {
        try readSingleStatement { db in
            try Upload.fetchOne(db.cachedStatement(sql: """
                SELECT u.* FROM minihost_uploads u
                JOIN minihost_uploads_publish p ON p.upload_id = u.id
                WHERE u.id = ? AND u.state = 'ready' AND p.status = 'published'
                """), arguments: [id])
        }
    }

    /// Adds to `released` the blob the purged row no longer references and
    /// whether it was linked in the public tree.
    func purgeRow(_ upload: Upload, now: Date, _ db: Database, into released: inout Released) throws {
        var purged = upload
        purged.state = .purged
        purged.blob = nil
        purged.purgedAt = now
        try purged.update(db)
        _ = try Publication.deleteOne(db, key: upload.id)
        // Not public from here on, before the commit says so.
        if publicTree.unpublish(.cache, PublicTree.Link(id: upload.id, contentType: upload.contentType)) {
            released.unlinkedPublicFile = true
        }
        if let publicId = upload.publicId, publicTree.unpublish(.links, PublicTree.Link(id: publicId, contentType: upload.contentType)) {
            released.unlinkedPublicFile = true
        }
        try Self.bumpPublicGeneration(db)
        if let blob = upload.blob { released.blobs.insert(blob) }
    }

    /// Hot path (every download): a cached statement skips SQL compilation
    /// and GRDB's statement authorizer, which dominated a profile of reads.
    private func ownedUpload(_ id: String, _ owner: Owner, _ db: Database) throws -> Upload? {
        try db.cachedStatement(sql: "SELECT \(Upload.selection) FROM minihost_uploads WHERE id = ? AND owner_kind = ? AND owner_id = ?")
            .fetchFirst(arguments: [id, owner.kind.rawValue, owner.id], Upload.init(columns:))
    }

    public static func decodePayload(_ text: String?) -> [String: Any] {
        guard let text, let data = text.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
        return object
    }

    static func encodePayload(_ payload: [String: Any]) throws -> String {
        guard JSONSerialization.isValidJSONObject(payload) else {
            throw StorageError(.invalid, "payload is not a JSON object")
        }
        let data = try JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
