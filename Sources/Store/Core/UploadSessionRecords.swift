import Foundation
import GRDB

/// A resumable upload in progress. Chunks may arrive in any order, in
/// parallel, and more than once; they are assembled in index order.
public struct UploadSession: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "minihost_upload_sessions"

    public enum State: String, Codable, Sendable {
        /// Accepting chunks.
        case open
        /// One finish call is assembling the chunks; others wait.
        case assembling
        /// Assembled into `uploadId`.
        case completed
    }

    public var id: String
    public var ownerKind: String
    public var ownerId: String
    public var fileName: String
    public var contentType: String
    public var declaredSize: Int64
    /// Dialect flags (JSON object), kept for when the upload is finished.
    public var options: String?
    public var state: State
    public var assemblingSince: Date?
    /// The process that claimed the session for finishing (``ProcessIdentity``).
    public var assemblingBy: String?
    public var uploadId: String?
    public var createdAt: Date
    public var expiresAt: Date
    /// The slot each chunk gets in the session file (chunk `i` at `i × chunkSize`),
    /// fixed by the first chunk written in place; nil before that, and
    /// ``sealedChunkSize`` once finishing has started.
    public var chunkSize: Int64?

    /// `chunkSize` once a finish call has claimed the session: later chunks
    /// (which will be refused anyway) go to files of their own.
    static let sealedChunkSize: Int64 = -1

    enum CodingKeys: String, CodingKey {
        case id, ownerKind = "owner_kind", ownerId = "owner_id", fileName = "file_name", contentType = "content_type"
        case declaredSize = "declared_size", options, state, assemblingSince = "assembling_since"
        case assemblingBy = "assembling_by"
        case uploadId = "upload_id", createdAt = "created_at", expiresAt = "expires_at", chunkSize = "chunk_size"
    }

    public var owner: Owner { Owner(kind: Owner.Kind(rawValue: ownerKind), id: ownerId) }
}

/// One acknowledged chunk: its bytes are on disk and fsync'd, either in the
/// session file at `fileOffset` or in a file of its own.
public struct UploadSessionChunk: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "minihost_upload_session_chunks"

    public var sessionId: String
    public var chunkIndex: Int64
    public var size: Int64
    /// Set for a chunk in its own file (hashed as it arrived).
    public var sha256: String?
    /// Where the bytes start in the session file; nil for a chunk in its own file.
    public var fileOffset: Int64?

    enum CodingKeys: String, CodingKey {
        case sessionId = "session_id", chunkIndex = "chunk_index", size, sha256, fileOffset = "file_offset"
    }
}

/// What finishing a session found.
public enum SessionFinish: Sendable, Equatable {
    /// Assembled now, or by an earlier call: the stored upload.
    case completed(Upload)
    /// Another call is assembling it; ask again shortly.
    case inProgress
}

extension UploadSession {
    /// The session `id`, through a statement each connection prepares once
    /// (every read of a session by id goes here): a tus `PATCH` reads its
    /// session under the lock and again in its commit, and the query
    /// interface prepared a new statement each time (GRDB's authorizer runs
    /// per column as SQLite compiles it).
    static func fetchCached(_ db: Database, id: String) throws -> UploadSession? {
        try UploadSession.fetchOne(db.cachedStatement(sql: "SELECT * FROM minihost_upload_sessions WHERE id = ?"),
                                   arguments: [id])
    }

    /// A dialect's terms as a session keeps them in `options` (JSON text).
    public static func encodeOptions<Terms: Encodable>(_ terms: Terms) throws -> String {
        String(decoding: try JSONEncoder().encode(terms), as: UTF8.self)
    }

    /// `options` read back as a dialect's terms; nil if absent or another shape.
    public func decodedOptions<Terms: Decodable>(as type: Terms.Type) -> Terms? {
        options.flatMap { try? JSONDecoder().decode(type, from: Data($0.utf8)) }
    }
}
