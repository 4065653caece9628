import Foundation
import GRDB
import OpenSSLCrypto

/// An access token of a user account (uploader dialect): random, stored as
/// its SHA-256, expiring, and ended by logout or refresh.
public struct AccessToken: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "minihost_access_tokens"

    public var tokenHash: String
    public var username: String
    /// Issued for a bot (`?bot=true`): the long lifetime.
    public var longLived: Bool
    public var createdAt: Date
    public var expiresAt: Date

    enum CodingKeys: String, CodingKey {
        case tokenHash = "token_hash", username, longLived = "long_lived", createdAt = "created_at"
        case expiresAt = "expires_at"
    }
}

/// What a presented access token turned out to be.
public enum AccessTokenCheck: Sendable, Equatable {
    case valid(User, AccessToken)
    case expired
    case notFound
}

/// The uploader dialect's attributes of an upload (`minihost_uploader_files`).
public struct UploaderFileAttributes: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "minihost_uploader_files"

    public var uploadId: String
    /// The file name's extension with its dot (`.mp4`), as the API reports it.
    public var ext: String

    enum CodingKeys: String, CodingKey {
        case uploadId = "upload_id", ext
    }
}

/// An uploader file: the core row and its attributes.
public struct UploaderFile: Sendable, Equatable {
    public var upload: Upload
    public var ext: String
    /// Uploaded with a valid access token (or transferred into an account).
    public var synced: Bool { upload.ownerKind == Owner.Kind.user.rawValue }
}

/// The uploader dialect's accounts' tokens and files. Accounts are the
/// core's users (``AccountStore``), so one account reaches its files through
/// every dialect that knows users. A file is a core upload whose public id
/// is its `file_url`, owned by a user or, for an anonymous upload, by
/// whoever holds its delete key.
public struct UploaderStore: Sendable {
    let store: MinihostStore

    /// The owner of every anonymous upload; its delete key is the credential.
    public static let anonymous = Owner(kind: .anonymous, id: "uploader")

    // MARK: Access tokens

    /// Issues a token for `username`; returns it (shown once, stored hashed).
    public func issueToken(username: String, longLived: Bool, lifetime: TimeInterval, now: Date = Date()) throws -> String {
        let token = try SecureRandom.hex(byteCount: 32)
        let record = AccessToken(tokenHash: try SHA256Hasher.hexDigest(of: Array(token.utf8)), username: username,
                                 longLived: longLived, createdAt: now, expiresAt: now.addingTimeInterval(lifetime))
        try store.db.write { db in
            // Expired tokens of this user go as new ones come, so the table
            // can't grow with logins that never log out.
            try db.execute(sql: "DELETE FROM minihost_access_tokens WHERE username = ? AND expires_at <= ?",
                           arguments: [username, now])
            try record.insert(db)
        }
        return token
    }

    /// Whether `token` is well formed: what ``issueToken`` makes.
    public static func isWellFormed(_ token: String) -> Bool { Hex.isLowercaseHex(token, length: 64) }

    /// The account `token` belongs to, if it is current.
    public func checkToken(_ token: String, now: Date = Date()) throws -> AccessTokenCheck {
        let hash = try SHA256Hasher.hexDigest(of: Array(token.utf8))
        return try store.db.read { db in
            guard let record = try AccessToken.fetchOne(db, key: hash),
                  let user = try User.fetchOne(db, key: record.username) else { return .notFound }
            return record.expiresAt > now ? .valid(user, record) : .expired
        }
    }

    /// Ends `token`. Returns false if it wasn't stored.
    @discardableResult
    public func revokeToken(_ token: String) throws -> Bool {
        let hash = try SHA256Hasher.hexDigest(of: Array(token.utf8))
        return try store.db.write { try AccessToken.deleteOne($0, key: hash) }
    }

    /// Replaces a current token with a new one of the same kind, atomically:
    /// of two refreshes of one token, one gets nil.
    public func refreshToken(_ token: AccessToken, lifetime: TimeInterval, now: Date = Date()) throws -> String? {
        let next = try SecureRandom.hex(byteCount: 32)
        let record = AccessToken(tokenHash: try SHA256Hasher.hexDigest(of: Array(next.utf8)), username: token.username,
                                 longLived: token.longLived, createdAt: now, expiresAt: now.addingTimeInterval(lifetime))
        let replaced = try store.db.write { db -> Bool in
            guard try AccessToken.deleteOne(db, key: token.tokenHash) else { return false }
            try record.insert(db)
            return true
        }
        return replaced ? next : nil
    }

    // MARK: Files

    /// Records a received file under the public id `fileURL` (without its
    /// extension), owned by `owner`, with at most `maxDownloads` downloads.
    public func commit(_ file: CompletedBlob, owner: Owner, fileName: String, contentType: String, ext: String,
                       fileURL: String, maxDownloads: Int?, quotaBytes: Int64? = nil) throws -> UploaderFile {
        let upload = try store.commitUpload(file, owner: owner, fileName: fileName, contentType: contentType,
                                            quotaBytes: quotaBytes, configure: { upload in
            upload.publicId = fileURL
            upload.maxDownloads = maxDownloads
        }) { db, upload in
            try UploaderFileAttributes(uploadId: upload.id, ext: ext).insert(db)
        }
        return UploaderFile(upload: upload, ext: ext)
    }

    /// A ready uploader file by its public id (ended ones included: the
    /// caller decides what an ended file answers).
    public func file(fileURL: String) throws -> UploaderFile? {
        try store.db.read { db in
            guard let upload = try Upload.fetchOne(db, sql: "SELECT * FROM minihost_uploads WHERE public_id = ? AND state = 'ready'",
                                                   arguments: [fileURL]),
                  let attributes = try UploaderFileAttributes.fetchOne(db, key: upload.id) else { return nil }
            return UploaderFile(upload: upload, ext: attributes.ext)
        }
    }

    /// The newest `limit` ready uploader files of `username`, newest first.
    public func files(of username: String, limit: Int = 10_000) throws -> [UploaderFile] {
        try store.db.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT u.*, f.ext AS uploader_ext FROM minihost_uploads u JOIN minihost_uploader_files f ON f.upload_id = u.id
                WHERE u.owner_kind = ? AND u.owner_id = ? AND u.state = 'ready'
                ORDER BY u.created_at DESC, u.id LIMIT ?
                """, arguments: [Owner.Kind.user.rawValue, username, limit])
            return try rows.map { UploaderFile(upload: try Upload(row: $0), ext: $0["uploader_ext"]) }
        }
    }

    /// Purges a file (its blob goes when nothing else references it);
    /// returns once nginx can no longer serve it. False if it was already gone.
    public func delete(_ file: UploaderFile, now: Date = Date()) throws -> Bool {
        try store.writeReleasingBlobs { db, released in
            guard let upload = try Upload.fetchOne(db, key: file.upload.id), upload.state == .ready else { return false }
            try store.purgeRow(upload, now: now, db, into: &released)
            return true
        }
    }

    /// Moves an anonymous file into `username`'s account. False if the file
    /// is gone or already someone's.
    public func transfer(_ file: UploaderFile, to username: String) throws -> Bool {
        try store.db.write { db in
            try db.execute(sql: """
                UPDATE minihost_uploads SET owner_kind = ?, owner_id = ? WHERE id = ? AND owner_kind = ? AND state = 'ready'
                """, arguments: [Owner.Kind.user.rawValue, username, file.upload.id, Self.anonymous.kind.rawValue])
            return db.changesCount == 1
        }
    }
}

extension MinihostStore {
    /// The uploader dialect's tokens and files.
    public var uploader: UploaderStore { UploaderStore(store: self) }
}
