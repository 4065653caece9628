import Foundation
import GRDB
import OpenSSLCrypto

/// A new resumable upload's parameters.
public struct SessionRequest: Sendable {
    public var owner: Owner
    public var fileName: String
    public var contentType: String
    public var declaredSize: Int64
    public var folderId: Int64?
    /// Dialect flags to keep until finish (a JSON object as text).
    public var options: String?

    public init(owner: Owner, fileName: String, contentType: String = "application/octet-stream", declaredSize: Int64,
                folderId: Int64? = nil, options: String? = nil) {
        self.owner = owner
        self.fileName = fileName
        self.contentType = contentType
        self.declaredSize = declaredSize
        self.folderId = folderId
        self.options = options
    }
}

extension MinihostStore {
    /// How long a finish call may hold a session in `assembling` before
    /// another call may take over (the first one crashed).
    static let assemblyTakeover: TimeInterval = 600

    /// Opens a session. `maxSize` bounds the declared size; with `quotaBytes`
    /// the owner's stored bytes plus every open session's declared size must fit.
    public func openSession(_ request: SessionRequest, maxSize: Int64, quotaBytes: Int64? = nil,
                            lifetime: TimeInterval = 24 * 3600, now: Date = Date()) throws -> UploadSession {
        guard request.declaredSize > 0, request.declaredSize <= maxSize else {
            throw StorageError(.invalid, "size must be between 1 and \(maxSize) bytes")
        }
        let session = UploadSession(
            id: try SecureRandom.hex(byteCount: 16), ownerKind: request.owner.kind, ownerId: request.owner.id,
            fileName: request.fileName, contentType: request.contentType, declaredSize: request.declaredSize,
            folderId: request.folderId, options: request.options, state: .open, assemblingSince: nil, uploadId: nil,
            createdAt: now, expiresAt: now.addingTimeInterval(lifetime))
        try writeImmediately { db in
            if let quotaBytes {
                let used = try Self.bytesUsed(by: request.owner, now: now, db)
                guard used + request.declaredSize <= quotaBytes else {
                    throw StorageError(.quotaExceeded, "storage limit exceeded")
                }
            }
            try session.insert(db)
        }
        return session
    }

    /// Stored bytes plus bytes reserved by unexpired open sessions.
    static func bytesUsed(by owner: Owner, now: Date, _ db: Database) throws -> Int64 {
        let stored = try Int64.fetchOne(db, sql: """
            SELECT COALESCE(SUM(size), 0) FROM minihost_uploads WHERE owner_kind = ? AND owner_id = ? AND state = 'ready'
            """, arguments: [owner.kind, owner.id]) ?? 0
        let reserved = try Int64.fetchOne(db, sql: """
            SELECT COALESCE(SUM(declared_size), 0) FROM minihost_upload_sessions
            WHERE owner_kind = ? AND owner_id = ? AND state != 'completed' AND expires_at > ?
            """, arguments: [owner.kind, owner.id, now]) ?? 0
        return stored + reserved
    }

    /// The session, if it exists and has not expired.
    public func session(id: String, now: Date = Date()) throws -> UploadSession? {
        guard let session = try read({ try UploadSession.fetchOne($0, key: id) }) else { return nil }
        return session.expiresAt > now || session.state == .completed ? session : nil
    }

    public func chunks(ofSession id: String) throws -> [UploadSessionChunk] {
        try read { try UploadSessionChunk.filter(Column("session_id") == id).order(Column("chunk_index")).fetchAll($0) }
    }

    func sessionFolder(_ id: String) -> String { directory.sessionsPath + "/" + id }
    func chunkPath(_ id: String, _ index: Int64) -> String { sessionFolder(id) + "/\(index).chunk" }

    /// Records a chunk whose bytes are complete and fsync'd in `file`. Sending
    /// the same index again replaces it. Refused (and `file` removed) when the
    /// session is unknown, expired or finished, the index is past the declared
    /// size, or all chunks together would exceed it.
    public func acceptChunk(sessionId: String, index: Int64, file: CompletedBlob, now: Date = Date()) throws {
        do {
            try writeImmediately { db in
                guard let session = try UploadSession.fetchOne(db, key: sessionId), session.expiresAt > now else {
                    throw StorageError(.notFound, "upload session not found")
                }
                guard session.state == .open else { throw StorageError(.invalid, "upload is already being finished") }
                guard index >= 0, index <= session.declaredSize else {
                    throw StorageError(.invalid, "chunk \(index) is past the declared size")
                }
                let others = try Int64.fetchOne(db, sql: """
                    SELECT COALESCE(SUM(size), 0) FROM minihost_upload_session_chunks WHERE session_id = ? AND chunk_index != ?
                    """, arguments: [sessionId, index]) ?? 0
                guard others + file.size <= session.declaredSize else {
                    throw StorageError(.invalid, "chunks exceed the declared size of \(session.declaredSize) bytes")
                }
                try FileSystem.makeDirectory(sessionFolder(sessionId), mode: 0o700)
                guard rename(file.temporaryPath, chunkPath(sessionId, index)) == 0 else {
                    throw StorageError.fromErrno("store chunk")
                }
                try FileSystem.syncDirectory(sessionFolder(sessionId))
                try UploadSessionChunk(sessionId: sessionId, chunkIndex: index, size: file.size, sha256: file.sha256).save(db)
            }
        } catch {
            file.discard()
            throw error
        }
    }

    /// Indices missing between the first chunk (0 or 1) and the last one.
    static func missingChunks(_ chunks: [UploadSessionChunk]) -> [Int64] {
        let indices = Set(chunks.map(\.chunkIndex))
        guard let last = indices.max() else { return [] }
        let first: Int64 = indices.contains(0) ? 0 : 1
        return (first...max(first, last)).filter { !indices.contains($0) }
    }

    /// Assembles the chunks in order into one stored upload. Safe to call
    /// twice or concurrently: one call assembles, the others see `inProgress`
    /// and then `completed` with the same upload. Missing chunks or too few
    /// bytes are `invalid`, naming what is missing; nothing changes then.
    public func finishSession(id: String, owner: Owner, now: Date = Date(),
                              configure: (inout Upload) throws -> Void = { _ in }) throws -> SessionFinish {
        let claim: FinishClaim = try writeImmediately { db in
            guard let session = try UploadSession.fetchOne(db, key: id), session.owner == owner else {
                throw StorageError(.notFound, "upload session not found")
            }
            if session.state == .completed { return .alreadyCompleted }
            guard session.expiresAt > now else { throw StorageError(.notFound, "upload session not found") }
            if session.state == .assembling, let since = session.assemblingSince,
               now.timeIntervalSince(since) < Self.assemblyTakeover { return .busy }
            let chunks = try UploadSessionChunk.filter(Column("session_id") == id).order(Column("chunk_index")).fetchAll(db)
            let missing = Self.missingChunks(chunks)
            guard missing.isEmpty else {
                throw StorageError(.invalid, "missing chunks: \(missing.map(String.init).joined(separator: ","))")
            }
            let received = chunks.reduce(Int64(0)) { $0 + $1.size }
            guard received == session.declaredSize else {
                throw StorageError(.invalid, "received \(received) of \(session.declaredSize) bytes; chunks after \(chunks.last?.chunkIndex ?? 0) are missing")
            }
            var assembling = session
            assembling.state = .assembling
            assembling.assemblingSince = now
            try assembling.update(db)
            return .assemble(assembling, chunks)
        }
        let session: UploadSession, chunks: [UploadSessionChunk]
        switch claim {
        case .alreadyCompleted:
            return try completedUpload(ofSession: id).map(SessionFinish.completed) ?? .inProgress
        case .busy:
            return .inProgress
        case .assemble(let claimed, let claimedChunks):
            (session, chunks) = (claimed, claimedChunks)
        }
        do {
            let upload = try assemble(session, chunks, now: now, configure: configure)
            FileSystem.removeTree(sessionFolder(id))
            return .completed(upload)
        } catch {
            _ = try? writeImmediately { db in
                try UploadSession.filter(Column("id") == id)
                    .updateAll(db, Column("state").set(to: "open"), Column("assembling_since").set(to: nil))
            }
            throw error
        }
    }

    private enum FinishClaim {
        case alreadyCompleted, busy
        case assemble(UploadSession, [UploadSessionChunk])
    }

    private func assemble(_ session: UploadSession, _ chunks: [UploadSessionChunk], now: Date,
                          configure: (inout Upload) throws -> Void) throws -> Upload {
        let writer = try blobs.makeWriter()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        for chunk in chunks {
            let descriptor = open(chunkPath(session.id, chunk.chunkIndex), O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { writer.abandon(); throw StorageError.fromErrno("open chunk \(chunk.chunkIndex)") }
            defer { close(descriptor) }
            while true {
                let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count < 0 { writer.abandon(); throw StorageError.fromErrno("read chunk \(chunk.chunkIndex)") }
                if count == 0 { break }
                try buffer.withUnsafeBytes { try writer.write(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            }
        }
        let file = try writer.finish()
        guard file.size == session.declaredSize else {
            file.discard()
            throw StorageError(.io, "assembled \(file.size) bytes, expected \(session.declaredSize)")
        }
        return try commitUpload(file, owner: session.owner, fileName: session.fileName, contentType: session.contentType,
                                now: now, configure: { upload in
                                    upload.folderId = session.folderId
                                    try configure(&upload)
                                }, alsoInTransaction: { db, upload in
                                    try UploadSession.filter(Column("id") == session.id).updateAll(
                                        db, Column("state").set(to: "completed"), Column("upload_id").set(to: upload.id))
                                    try UploadSessionChunk.filter(Column("session_id") == session.id).deleteAll(db)
                                })
    }

    private func completedUpload(ofSession id: String) throws -> Upload? {
        try read { db in
            try Upload.fetchOne(db, sql: """
                SELECT u.* FROM minihost_uploads u JOIN minihost_upload_sessions s ON s.upload_id = u.id WHERE s.id = ?
                """, arguments: [id])
        }
    }

    /// Deletes sessions past their expiry (and finished ones a day after it),
    /// with their chunk files, and chunk folders no session owns. Returns how
    /// many sessions went.
    /// Runs under the write lock, so a chunk being accepted (which creates its
    /// folder and row in one write) is never mistaken for an orphan.
    @discardableResult
    public func expireSessions(now: Date = Date()) throws -> Int {
        try writeImmediately { db in
            let ids = try String.fetchAll(db, sql: """
                SELECT id FROM minihost_upload_sessions
                WHERE (state != 'completed' AND expires_at <= ?) OR (state = 'completed' AND expires_at <= ?)
                """, arguments: [now, now.addingTimeInterval(-24 * 3600)])
            try UploadSession.filter(keys: ids).deleteAll(db)
            let live = Set(try String.fetchAll(db, sql: "SELECT id FROM minihost_upload_sessions"))
            for name in FileSystem.list(directory.sessionsPath) where !live.contains(name) {
                FileSystem.removeTree(directory.sessionsPath + "/" + name)
            }
            return ids.count
        }
    }
}
