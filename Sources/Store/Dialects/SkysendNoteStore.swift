import Foundation
import GRDB
import OpenSSLCrypto

/// A skysend note: text the client encrypted, which the server can't read.
/// Its tokens are kept as SHA-256 of the bytes the client sent.
public struct SkysendNote: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "minihost_skysend_notes"

    public var id: String
    public var authTokenHash: String
    public var ownerTokenHash: String
    /// base64url, 16 bytes: the client's HKDF salt, handed back to readers.
    public var salt: String
    public var encryptedContent: Data
    public var nonce: Data
    public var contentType: String
    public var passwordSalt: String?
    public var passwordAlgo: String?
    /// 0 is unlimited.
    public var maxViews: Int
    public var viewCount: Int
    public var expiresAt: Date
    public var createdAt: Date

    public var hasPassword: Bool { passwordAlgo != nil }

    /// Ended: past its expiry or out of views; never shown again.
    public func endReason(at now: Date) -> SkysendNoteStore.Ended? {
        if now >= expiresAt { return .expired }
        if maxViews > 0 && viewCount >= maxViews { return .viewLimitReached }
        return nil
    }

    enum CodingKeys: String, CodingKey {
        case id, authTokenHash = "auth_token_hash", ownerTokenHash = "owner_token_hash", salt
        case encryptedContent = "encrypted_content", nonce, contentType = "content_type"
        case passwordSalt = "password_salt", passwordAlgo = "password_algo", maxViews = "max_views"
        case viewCount = "view_count", expiresAt = "expires_at", createdAt = "created_at"
    }

    public init(id: String, authTokenHash: String, ownerTokenHash: String, salt: String, encryptedContent: Data,
                nonce: Data, contentType: String, passwordSalt: String?, passwordAlgo: String?, maxViews: Int,
                viewCount: Int = 0, expiresAt: Date, createdAt: Date) {
        self.id = id
        self.authTokenHash = authTokenHash
        self.ownerTokenHash = ownerTokenHash
        self.salt = salt
        self.encryptedContent = encryptedContent
        self.nonce = nonce
        self.contentType = contentType
        self.passwordSalt = passwordSalt
        self.passwordAlgo = passwordAlgo
        self.maxViews = maxViews
        self.viewCount = viewCount
        self.expiresAt = expiresAt
        self.createdAt = createdAt
    }
}

/// The skysend dialect's notes.
public struct SkysendNoteStore: Sendable {
    let db: StoreDatabase

    public enum Ended: Sendable, Equatable {
        case expired, viewLimitReached
    }

    /// What viewing a note found.
    public enum View: Sendable, Equatable {
        /// Counted; the note as it is after this view.
        case shown(SkysendNote)
        case ended(Ended)
        case notFound
    }

    /// The SHA-256 (hex) a token is kept and compared as.
    public static func tokenHash(_ bytes: [UInt8]) throws -> String {
        try SHA256Hasher.hexDigest(of: bytes)
    }

    public func create(_ note: SkysendNote) throws {
        try db.write { try note.insert($0) }
    }

    public func note(id: String) throws -> SkysendNote? {
        try db.read { try SkysendNote.fetchOne($0, key: id) }
    }

    /// Counts one view, atomically: of any number of concurrent views of a
    /// note with k views left, exactly k are shown. The caller has checked
    /// the auth token.
    public func view(id: String, now: Date = Date()) throws -> View {
        try db.writeImmediately { db in
            guard var note = try SkysendNote.fetchOne(db, key: id) else { return .notFound }
            if let ended = note.endReason(at: now) { return .ended(ended) }
            note.viewCount += 1
            try db.execute(sql: "UPDATE minihost_skysend_notes SET view_count = ? WHERE id = ?",
                           arguments: [note.viewCount, id])
            return .shown(note)
        }
    }

    @discardableResult
    public func delete(id: String) throws -> Bool {
        try db.write { try SkysendNote.deleteOne($0, key: id) }
    }

    /// Deletes up to `limit` notes that expired or ran out of views. Returns how many.
    @discardableResult
    public func deleteEnded(now: Date = Date(), limit: Int = 1000) throws -> Int {
        try db.write { db in
            try db.execute(sql: """
                DELETE FROM minihost_skysend_notes WHERE id IN (
                    SELECT id FROM minihost_skysend_notes
                    WHERE expires_at <= ? OR (max_views > 0 AND view_count >= max_views) LIMIT ?)
                """, arguments: [now, limit])
            return db.changesCount
        }
    }
}

extension MinihostStore {
    /// The skysend dialect's notes.
    public var skysendNotes: SkysendNoteStore { SkysendNoteStore(db: db) }
}
