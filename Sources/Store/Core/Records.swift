import Foundation
import GRDB

/// An app's credential for the minihost dialect: `client_key.secret`, with
/// only the secret's SHA-256 at rest.
public struct APIClient: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "minihost_api_clients"

    public var clientKey: String
    public var secretHash: String
    /// Comma-separated: `upload`, `download`, `publish`.
    public var scopes: String
    public var active: Bool
    public var createdAt: Date
    public var revokedAt: Date?

    enum CodingKeys: String, CodingKey {
        case clientKey = "client_key", secretHash = "secret_hash", scopes, active
        case createdAt = "created_at", revokedAt = "revoked_at"
    }

    /// Decoded by hand: this record is read on every authenticated request,
    /// and Codable decoding showed up in profiles of downloads.
    public init(row: Row) throws {
        clientKey = row["client_key"]
        secretHash = row["secret_hash"]
        scopes = row["scopes"]
        active = row["active"]
        createdAt = row["created_at"]
        revokedAt = row["revoked_at"]
    }

    public init(clientKey: String, secretHash: String, scopes: String, active: Bool, createdAt: Date, revokedAt: Date?) {
        self.clientKey = clientKey
        self.secretHash = secretHash
        self.scopes = scopes
        self.active = active
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }

    public var scopeList: [String] { scopes.split(separator: ",").map(String.init) }

    /// Asked on every authenticated request, so it walks the list in place
    /// rather than splitting it into new strings.
    public func has(scope: String) -> Bool {
        var rest = scopes[...]
        while true {
            let end = rest.firstIndex(of: ",") ?? rest.endIndex
            if rest[..<end] == scope { return true }
            guard end < rest.endIndex else { return false }
            rest = rest[rest.index(after: end)...]
        }
    }
}

/// Who may act on an upload. One reference with a kind, shared by every dialect.
public struct Owner: Hashable, Sendable, CustomStringConvertible {
    /// What kind of credential owns an upload. A struct rather than an enum
    /// so each dialect can add its own kind; bulk actions name the kind they
    /// apply to, so one dialect's maintenance never selects another's files.
    public struct Kind: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// A minihost API client (`client_key.secret`).
        public static let apiClient = Kind(rawValue: "api_client")
        /// A user account (plain and uploader dialects).
        public static let user = Kind(rawValue: "user")
        /// Whoever holds an anonymous uploader file's delete key.
        public static let anonymous = Kind(rawValue: "anonymous")
        /// Whoever holds a skysend file's owner token.
        public static let skysend = Kind(rawValue: "skysend")
    }

    public var kind: Kind
    public var id: String

    public init(kind: Kind, id: String) {
        self.kind = kind
        self.id = id
    }

    public static func apiClient(_ key: String) -> Owner { Owner(kind: .apiClient, id: key) }

    public var description: String { "\(kind):\(id)" }
}

/// A stored file (or one being received) and the policies dialects attach to it.
public struct Upload: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "minihost_uploads"

    public enum State: String, Codable, Sendable {
        case receiving, ready, purged
    }

    public var id: String
    public var ownerKind: String
    public var ownerId: String
    /// A safe display name (see ``DisplayName``), never a path.
    public var fileName: String
    public var contentType: String
    public var size: Int64
    public var sha256: String
    /// The blob's address; nil once purged.
    public var blob: String?
    public var state: State
    public var createdAt: Date
    public var finishedAt: Date?
    public var purgedAt: Date?
    /// A JSON object, as text.
    public var appPayload: String?
    public var appHandledAt: Date?
    public var expiresAt: Date?
    public var maxDownloads: Int?
    public var downloadCount: Int
    public var passwordHash: String?
    /// A short id for public links (plain dialect and later ones).
    public var publicId: String?

    enum CodingKeys: String, CodingKey {
        case id, ownerKind = "owner_kind", ownerId = "owner_id", fileName = "file_name"
        case contentType = "content_type", size, sha256, blob, state, createdAt = "created_at"
        case finishedAt = "finished_at", purgedAt = "purged_at", appPayload = "app_payload"
        case appHandledAt = "app_handled_at", expiresAt = "expires_at", maxDownloads = "max_downloads"
        case downloadCount = "download_count", passwordHash = "password_hash", publicId = "public_id"
    }

    public var owner: Owner { Owner(kind: Owner.Kind(rawValue: ownerKind), id: ownerId) }

    /// Decoded by hand: read on every download and cache hit (see ``APIClient/init(row:)``).
    public init(row: Row) throws {
        id = row["id"]
        ownerKind = row["owner_kind"]
        ownerId = row["owner_id"]
        fileName = row["file_name"]
        contentType = row["content_type"]
        size = row["size"]
        sha256 = row["sha256"]
        blob = row["blob"]
        guard let parsed = State(rawValue: row["state"]) else {
            throw StorageError(.invalid, "upload \(String(describing: row["id"] as String?)) has an unknown state")
        }
        state = parsed
        createdAt = row["created_at"]
        finishedAt = row["finished_at"]
        purgedAt = row["purged_at"]
        appPayload = row["app_payload"]
        appHandledAt = row["app_handled_at"]
        expiresAt = row["expires_at"]
        maxDownloads = row["max_downloads"]
        downloadCount = row["download_count"]
        passwordHash = row["password_hash"]
        publicId = row["public_id"]
    }

    /// The columns ``init(columns:)`` reads, in its order.
    static let selection = """
        id, owner_kind, owner_id, file_name, content_type, size, sha256, blob, state, created_at, finished_at,
        purged_at, app_payload, app_handled_at, expires_at, max_downloads, download_count, password_hash, public_id
        """

    /// Decoded by position from a `SELECT` of ``selection``: the read behind
    /// every download (see ``ColumnValues``).
    init(columns c: ColumnValues) throws {
        let stateName: String = try c.required(8)
        guard let parsed = State(rawValue: stateName) else {
            throw StorageError(.invalid, "upload \(c.optional(0, as: String.self) ?? "?") has an unknown state")
        }
        self.init(id: try c.required(0), ownerKind: try c.required(1), ownerId: try c.required(2),
                  fileName: try c.required(3), contentType: try c.required(4), size: try c.required(5),
                  sha256: try c.required(6), blob: c.optional(7), state: parsed, createdAt: try c.required(9),
                  finishedAt: c.optional(10), purgedAt: c.optional(11), appPayload: c.optional(12),
                  appHandledAt: c.optional(13), expiresAt: c.optional(14), maxDownloads: c.optional(15),
                  downloadCount: try c.required(16), passwordHash: c.optional(17), publicId: c.optional(18))
    }

    public init(id: String, ownerKind: String, ownerId: String, fileName: String, contentType: String, size: Int64,
                sha256: String, blob: String?, state: State, createdAt: Date, finishedAt: Date?, purgedAt: Date?,
                appPayload: String?, appHandledAt: Date?, expiresAt: Date?, maxDownloads: Int?, downloadCount: Int,
                passwordHash: String?, publicId: String?) {
        self.id = id
        self.ownerKind = ownerKind
        self.ownerId = ownerId
        self.fileName = fileName
        self.contentType = contentType
        self.size = size
        self.sha256 = sha256
        self.blob = blob
        self.state = state
        self.createdAt = createdAt
        self.finishedAt = finishedAt
        self.purgedAt = purgedAt
        self.appPayload = appPayload
        self.appHandledAt = appHandledAt
        self.expiresAt = expiresAt
        self.maxDownloads = maxDownloads
        self.downloadCount = downloadCount
        self.passwordHash = passwordHash
        self.publicId = publicId
    }
}

/// Whether an upload is reachable at its public cache URL.
public struct Publication: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "minihost_uploads_publish"

    public enum Status: String, Codable, Sendable {
        case published, unpublished
    }

    public var uploadId: String
    public var status: Status
    public var publishedAt: Date?
    public var updatedAt: Date

    enum CodingKeys: String, CodingKey {
        case uploadId = "upload_id", status, publishedAt = "published_at", updatedAt = "updated_at"
    }
}

/// One line of the audit log: who did what to which upload, and how it ended.
public struct AuditEvent: Codable, FetchableRecord, MutablePersistableRecord, Sendable {
    public static let databaseTableName = "minihost_audit_log"

    public var id: Int64?
    public var at: Date
    public var actor: String
    public var action: String
    public var uploadId: String?
    public var status: Int
    public var remoteAddr: String?
    public var detail: String?

    enum CodingKeys: String, CodingKey {
        case id, at, actor, action, uploadId = "upload_id", status, remoteAddr = "remote_addr", detail
    }

    public init(actor: String, action: String, uploadId: String? = nil, status: Int,
                remoteAddr: String? = nil, detail: String? = nil, at: Date = Date()) {
        self.at = at
        self.actor = actor
        self.action = action
        self.uploadId = uploadId
        self.status = status
        self.remoteAddr = remoteAddr
        self.detail = detail
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// A human who runs the server and signs in to the operator endpoints.
public struct Operator: Codable, FetchableRecord, PersistableRecord, Sendable {
    public static let databaseTableName = "minihost_operators"

    public var username: String
    public var passwordHash: String
    public var createdAt: Date

    enum CodingKeys: String, CodingKey {
        case username, passwordHash = "password_hash", createdAt = "created_at"
    }
}

/// A signed-in operator; the cookie carries the token, the row only its hash.
public struct OperatorSession: Codable, FetchableRecord, PersistableRecord, Sendable {
    public static let databaseTableName = "minihost_operator_sessions"

    public var tokenHash: String
    public var username: String
    public var createdAt: Date
    public var expiresAt: Date
    public var revokedAt: Date?

    enum CodingKeys: String, CodingKey {
        case tokenHash = "token_hash", username, createdAt = "created_at"
        case expiresAt = "expires_at", revokedAt = "revoked_at"
    }
}
