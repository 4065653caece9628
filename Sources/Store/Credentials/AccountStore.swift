import Foundation
import GRDB
import OpenSSLCrypto

/// What a new secondary password may do.
public struct SecondaryPasswordOptions: Sendable {
    /// The root of the subtree it is limited to; nil is the whole account.
    public var folderScopeId: Int64?
    public var canList: Bool
    public var canEdit: Bool
    public var isApiKey: Bool

    public init(folderScopeId: Int64? = nil, canList: Bool = false, canEdit: Bool = false, isApiKey: Bool = false) {
        self.folderScopeId = folderScopeId
        self.canList = canList
        self.canEdit = canEdit
        self.isApiKey = isApiKey
    }
}

/// Accounts of the plain dialect: users with a primary password and a quota,
/// a folder tree each, and secondary passwords scoped to a subtree.
public struct AccountStore: Sendable {
    let db: StoreDatabase

    /// Creates a user with a root folder.
    public func createUser(username: String, password: String, quotaBytes: Int64? = nil,
                           hasher: Scrypt = .recommended, now: Date = Date()) throws -> User {
        guard AccountName.isValid(username) else {
            throw StorageError(.invalid, "username must be 1-64 characters of A-Z a-z 0-9 _ -")
        }
        guard password.utf8.count >= 8 else { throw StorageError(.invalid, "password must have at least 8 characters") }
        if let quotaBytes, quotaBytes < 0 { throw StorageError(.invalid, "quota must not be negative") }
        let user = User(username: username, passwordHash: try hasher.hash(password: password), quotaBytes: quotaBytes,
                        createdAt: now)
        try db.write { db in
            guard try User.fetchOne(db, key: username) == nil else {
                throw StorageError(.conflict, "user \(username) already exists")
            }
            try user.insert(db)
            var root = Folder(id: nil, username: username, parentId: nil, name: "", createdAt: now)
            try root.insert(db)
        }
        return user
    }

    /// The user `username`, or nil.
    public func user(username: String) throws -> User? {
        try db.read { try User.fetchOne($0, key: username) }
    }

    public func listUsers() throws -> [User] {
        try db.read { try User.order(Column("username")).fetchAll($0) }
    }

    public func activeSecondaryPasswords(username: String) throws -> [SecondaryPassword] {
        try db.read { db in
            try SecondaryPassword.filter(Column("username") == username && Column("revoked_at") == nil)
                .order(Column("label")).fetchAll(db)
        }
    }

    public func rootFolder(username: String) throws -> Folder {
        guard let root = try db.read({ db in
            try Folder.filter(Column("username") == username && Column("parent_id") == nil).fetchOne(db)
        }) else { throw StorageError(.notFound, "user \(username) not found") }
        return root
    }

    /// Creates a folder under `parentId` (the user's root when nil).
    public func createFolder(username: String, name: String, parentId: Int64? = nil, now: Date = Date()) throws -> Folder {
        let clean = name.trimmingCharacters(in: .whitespaces)
        guard (1...255).contains(clean.utf8.count), !clean.contains("/"),
              !clean.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw StorageError(.invalid, "folder names are 1-255 bytes without / or control characters")
        }
        let parent = try parentId ?? rootFolder(username: username).id!
        return try db.write { db in
            guard let owner = try Folder.fetchOne(db, key: parent), owner.username == username else {
                throw StorageError(.notFound, "folder \(parent) not found")
            }
            var folder = Folder(id: nil, username: username, parentId: parent, name: clean, createdAt: now)
            do { try folder.insert(db) } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                throw StorageError(.invalid, "folder \(clean) already exists there")
            }
            return folder
        }
    }

    /// True when `folderId` is `scopeId` or below it, in `username`'s tree.
    public func isFolder(_ folderId: Int64, inside scopeId: Int64, username: String) throws -> Bool {
        try db.read { db in
            try Bool.fetchOne(db, sql: """
                WITH RECURSIVE ancestors(id, parent_id) AS (
                    SELECT id, parent_id FROM minihost_folders WHERE id = ? AND username = ?
                    UNION ALL
                    SELECT f.id, f.parent_id FROM minihost_folders f JOIN ancestors a ON f.id = a.parent_id
                )
                SELECT EXISTS (SELECT 1 FROM ancestors WHERE id = ?)
                """, arguments: [folderId, username, scopeId]) ?? false
        }
    }

    /// The folder a credential writes to: the requested one if allowed,
    /// else its scope root (or the user's root). A folder outside a scoped
    /// credential's subtree is `outOfScope`; another user's is `notFound`.
    public func targetFolder(for credential: AccountCredential, requested: Int64?) throws -> Folder {
        let user = credential.user
        var scope: Int64?
        if case .secondary(_, let secondary) = credential { scope = secondary.folderScopeId }
        let id = try requested ?? scope ?? rootFolder(username: user.username).id!
        guard let folder = try db.read({ try Folder.fetchOne($0, key: id) }), folder.username == user.username else {
            throw StorageError(.notFound, "folder \(id) not found")
        }
        if let scope, try !isFolder(id, inside: scope, username: user.username) {
            throw StorageError(.outOfScope, "folder \(id) is outside this password's scope")
        }
        return folder
    }

    /// Creates a secondary password and returns it (shown once; stored as scrypt).
    /// Its form is `sp_<lookup>_<secret>`: the lookup finds the row.
    public func createSecondaryPassword(username: String, label: String, options: SecondaryPasswordOptions,
                                        hasher: Scrypt = .recommended, now: Date = Date()) throws -> (SecondaryPassword, String) {
        let cleanLabel = label.trimmingCharacters(in: .whitespaces)
        guard (1...100).contains(cleanLabel.utf8.count),
              !cleanLabel.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw StorageError(.invalid, "labels are 1-100 bytes without control characters")
        }
        if let scope = options.folderScopeId {
            guard let folder = try db.read({ try Folder.fetchOne($0, key: scope) }), folder.username == username else {
                throw StorageError(.notFound, "folder \(scope) not found")
            }
        }
        let lookup = try SecureRandom.hex(byteCount: 6)
        let password = "sp_\(lookup)_\(try SecureRandom.hex(byteCount: 16))"
        var record = SecondaryPassword(
            id: nil, username: username, label: cleanLabel, lookup: lookup,
            passwordHash: try hasher.hash(password: password), folderScopeId: options.folderScopeId,
            canList: options.canList, canEdit: options.canEdit, isApiKey: options.isApiKey,
            createdAt: now, lastUsedAt: nil, revokedAt: nil)
        try db.write { db in
            guard try User.fetchOne(db, key: username) != nil else { throw StorageError(.notFound, "user \(username) not found") }
            do { try record.insert(db) } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                throw StorageError(.invalid, "\(username) already has an active secondary password labelled \(cleanLabel)")
            }
        }
        return (record, password)
    }

    /// Revokes the active secondary password with this label; false if none.
    public func revokeSecondaryPassword(username: String, label: String, now: Date = Date()) throws -> Bool {
        try db.write { db in
            try SecondaryPassword
                .filter(Column("username") == username && Column("label") == label && Column("revoked_at") == nil)
                .updateAll(db, Column("revoked_at").set(to: now)) > 0
        }
    }

    /// Checks a username and password: a secondary password (by its lookup
    /// part) or the primary one. Every failure costs one scrypt, like success,
    /// so unknown users and wrong passwords take similar time.
    public func verifyAccount(username: String, password: String, decoyHash: String,
                              now: Date = Date()) throws -> AccountCredential? {
        let user = try db.read { try User.fetchOne($0, key: username) }
        if let lookup = Self.secondaryLookup(password) {
            let secondary = try db.read { db in
                try SecondaryPassword.filter(Column("lookup") == lookup && Column("revoked_at") == nil).fetchOne(db)
            }
            if let secondary, let user, secondary.username == user.username {
                guard try Scrypt.verify(password: password, encoded: secondary.passwordHash) else { return nil }
                try markUsed(secondary, now: now)
                return .secondary(user, secondary)
            }
        }
        let matches = try Scrypt.verify(password: password, encoded: user?.passwordHash ?? decoyHash)
        guard let user, matches else { return nil }
        return .primary(user)
    }

    /// The credential a recent ``verifyAccount(username:password:decoyHash:now:)``
    /// returned, re-read without scrypt: nil once its password hash has changed,
    /// the user is gone, or the secondary password was revoked.
    public func revalidate(_ verified: VerifiedAccount, now: Date = Date()) throws -> AccountCredential? {
        guard let user = try db.read({ try User.fetchOne($0, key: verified.username) }) else { return nil }
        guard let secondaryId = verified.secondaryId else {
            return user.passwordHash == verified.passwordHash ? .primary(user) : nil
        }
        let secondary = try db.read { db in
            try SecondaryPassword.filter(Column("id") == secondaryId && Column("revoked_at") == nil).fetchOne(db)
        }
        guard let secondary, secondary.username == user.username, secondary.passwordHash == verified.passwordHash else {
            return nil
        }
        try markUsed(secondary, now: now)
        return .secondary(user, secondary)
    }

    private func markUsed(_ secondary: SecondaryPassword, now: Date) throws {
        _ = try db.write { db in
            try SecondaryPassword.filter(Column("id") == secondary.id!).updateAll(db, Column("last_used_at").set(to: now))
        }
    }

    /// The lookup part of `sp_<12 hex>_<32 hex>`, or nil for any other password.
    static func secondaryLookup(_ password: String) -> String? {
        let parts = password.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "sp", Hex.isLowercaseHex(String(parts[1]), length: 12),
              Hex.isLowercaseHex(String(parts[2]), length: 32) else { return nil }
        return String(parts[1])
    }
}
