import Foundation
import GRDB
import OpenSSLCrypto

/// Operators (the minihost dialect's admins) and their sign-in sessions.
public struct OperatorStore: Sendable {
    let db: StoreDatabase

    /// Creates or replaces an operator's password.
    public func set(username: String, password: String, hasher: Scrypt = .recommended) throws {
        guard AccountName.isValid(username) else {
            throw StorageError(.invalid, "username must be 1-64 characters of A-Z a-z 0-9 _ -")
        }
        guard password.utf8.count >= 8 else { throw StorageError(.invalid, "password must have at least 8 characters") }
        let record = Operator(username: username, passwordHash: try hasher.hash(password: password), createdAt: Date())
        try db.write { db in
            try record.save(db)
            // A new password ends every session signed in with the old one.
            try OperatorSession.filter(Column("username") == username).deleteAll(db)
        }
    }

    public func record(username: String) throws -> Operator? {
        try db.read { try Operator.fetchOne($0, key: username) }
    }

    /// Starts a session and returns its token (stored only hashed).
    public func createSession(username: String, lifetime: TimeInterval, now: Date = Date()) throws -> String {
        let token = try SecureRandom.hex(byteCount: 32)
        let session = OperatorSession(tokenHash: try SHA256Hasher.hexDigest(of: Array(token.utf8)), username: username,
                                      createdAt: now, expiresAt: now.addingTimeInterval(lifetime), revokedAt: nil)
        try db.write { db in
            try OperatorSession.filter(Column("expires_at") < now).deleteAll(db)
            try session.insert(db)
        }
        return token
    }

    /// The operator a live session token belongs to, or nil.
    public func username(forSession token: String, now: Date = Date()) throws -> String? {
        let hash = try SHA256Hasher.hexDigest(of: Array(token.utf8))
        // Every s4 request asks: a cached statement, no query building.
        return try db.readSingleStatement { db in
            try db.cachedStatement(sql: """
                SELECT username FROM minihost_operator_sessions
                WHERE token_hash = ? AND revoked_at IS NULL AND expires_at > ?
                """).fetchFirst(arguments: [hash, now]) { try $0.required(0, as: String.self) }
        }
    }

    public func revokeSession(token: String, now: Date = Date()) throws {
        let hash = try SHA256Hasher.hexDigest(of: Array(token.utf8))
        try db.write { db in
            if var session = try OperatorSession.fetchOne(db, key: hash) {
                session.revokedAt = now
                try session.update(db)
            }
        }
    }
}

/// The audit log: who did what to which upload, and how it ended.
public struct AuditLog: Sendable {
    let db: StoreDatabase

    /// Appends one event.
    public func record(_ event: AuditEvent) throws {
        try db.write { _ = try event.inserted($0) }
    }
}
