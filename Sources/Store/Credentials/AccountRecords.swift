import Foundation
import GRDB

/// A person with files (plain dialect): a primary password and a quota.
public struct User: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "minihost_users"

    public var username: String
    public var passwordHash: String
    /// Bytes the user may store (reserved uploads included); nil is no limit.
    public var quotaBytes: Int64?
    public var createdAt: Date

    enum CodingKeys: String, CodingKey {
        case username, passwordHash = "password_hash", quotaBytes = "quota_bytes", createdAt = "created_at"
    }

    public var owner: Owner { Owner(kind: .user, id: username) }
}

/// A folder in a user's tree. Every user has one root (`parentId` nil).
public struct Folder: Codable, FetchableRecord, MutablePersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "minihost_folders"

    public var id: Int64?
    public var username: String
    public var parentId: Int64?
    public var name: String
    public var createdAt: Date

    enum CodingKeys: String, CodingKey {
        case id, username, parentId = "parent_id", name, createdAt = "created_at"
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// A password a user hands to a script: scoped to a folder subtree, with its
/// own permissions, revocable without touching the primary password.
public struct SecondaryPassword: Codable, FetchableRecord, MutablePersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "minihost_secondary_passwords"

    public var id: Int64?
    public var username: String
    public var label: String
    /// The password's public part, which finds the row without trying every hash.
    public var lookup: String
    public var passwordHash: String
    public var folderScopeId: Int64?
    public var canList: Bool
    public var canEdit: Bool
    public var isApiKey: Bool
    public var createdAt: Date
    public var lastUsedAt: Date?
    public var revokedAt: Date?

    enum CodingKeys: String, CodingKey {
        case id, username, label, lookup, passwordHash = "password_hash", folderScopeId = "folder_scope_id"
        case canList = "can_list", canEdit = "can_edit", isApiKey = "is_api_key", createdAt = "created_at"
        case lastUsedAt = "last_used_at", revokedAt = "revoked_at"
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// Who a username + password turned out to be.
public enum AccountCredential: Sendable, Equatable {
    case primary(User)
    case secondary(User, SecondaryPassword)

    public var user: User {
        switch self {
        case .primary(let user), .secondary(let user, _): return user
        }
    }
}

/// Enough of a verified credential to check it again without scrypt: who it
/// was and the stored hash the password matched.
public struct VerifiedAccount: Sendable, Equatable {
    public var username: String
    /// Set when the password was a secondary one.
    public var secondaryId: Int64?
    public var passwordHash: String

    public init(_ credential: AccountCredential) {
        switch credential {
        case .primary(let user):
            (username, secondaryId, passwordHash) = (user.username, nil, user.passwordHash)
        case .secondary(let user, let secondary):
            (username, secondaryId, passwordHash) = (user.username, secondary.id, secondary.passwordHash)
        }
    }
}
