import Foundation
import GRDB
import Glibc

/// Sessions written in order, at offsets (tus): each write is a chunk whose
/// index counts the writes and whose bytes go into the session file right
/// after the ones before, so finishing links the file as the blob, hashed as
/// it grew. Writes of one session must not overlap: callers hold
/// ``withSessionLock(_:_:)`` from reading the offset to accepting the bytes.
extension MinihostStore {
    /// Where the next write goes: the bytes acknowledged so far and the next chunk index.
    public func appendPosition(ofSession id: String) throws -> (offset: Int64, index: Int64) {
        try read { try appendPosition(ofSession: id, $0) }
    }

    /// Read from the last chunk's record alone (a seek in the primary key):
    /// each chunk was written where the ones before it end, so the last one
    /// in the session file ends where the next begins. A tus upload asks
    /// before each `PATCH`; adding up every record instead cost more with
    /// each one (3,000 `PATCH`es of 4 KiB: 1.4 → 2.1 ms each). Only a last
    /// chunk kept in a file of its own (no offset to go by) needs the sum.
    func appendPosition(ofSession id: String, _ db: Database) throws -> (offset: Int64, index: Int64) {
        guard let last = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT chunk_index, file_offset, size FROM minihost_upload_session_chunks
            WHERE session_id = ? ORDER BY chunk_index DESC LIMIT 1
            """), arguments: [id]) else { return (0, 0) }
        let index: Int64 = last[0], fileOffset: Int64? = last[1], size: Int64 = last[2]
        if let fileOffset { return (fileOffset + size, index + 1) }
        let total = try Int64.fetchOne(db.cachedStatement(sql: """
            SELECT COALESCE(SUM(size), 0) FROM minihost_upload_session_chunks WHERE session_id = ?
            """), arguments: [id]) ?? 0
        return (total, index + 1)
    }

    /// A writer for chunk `index`, `offset` bytes into the session file,
    /// taking at most `capacity` bytes there (more move to a file of its
    /// own, as does everything when another process writes in place).
    public func makeAppendWriter(sessionId: String, index: Int64, offset: Int64, capacity: Int64) throws -> ChunkWriter {
        if capacity > 0, sessionFiles.mayWriteInPlace {
            let state = try sessionFiles.state(for: sessionId) { try acknowledgedSpans(sessionId) }
            if state.claim(index) {
                do {
                    let descriptor = try openSessionFile(sessionId)
                    let slot = ChunkWriter.Slot(state: state, descriptor: descriptor, offset: offset, capacity: capacity)
                    return ChunkWriter(sessionId: sessionId, index: index, appendOffset: offset, target: .slot(slot),
                                       blobs: blobs)
                } catch {
                    state.release(index)
                    throw error
                }
            }
        }
        return ChunkWriter(sessionId: sessionId, index: index, appendOffset: offset, target: .ownFile(try blobs.makeWriter()),
                           blobs: blobs)
    }

    /// Runs `body` holding an exclusive lock on the session, across threads
    /// and processes (`flock` on a file in its folder): writes to one
    /// session in order queue here instead of racing for the same offset.
    public func withSessionLock<T>(_ sessionId: String, _ body: () throws -> T) throws -> T {
        try makeSessionFolder(sessionId)
        let descriptor = open(sessionFolder(sessionId) + "/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw StorageError.fromErrno("open session lock") }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else { throw StorageError.fromErrno("lock session") }
        }
        return try body()
    }

    /// ``withSessionLock(_:_:)`` for a caller that may not own the session:
    /// unless the session already has its folder, `admits` (a read saying
    /// whether the caller may touch it) runs first, so a stranger's id never
    /// makes a folder and lock file. nil when refused; `body` must still check
    /// under the lock. Where the folder exists the read is skipped: it was
    /// ~0.6 ms of every tus `PATCH` (a cold worker thread's first read).
    public func withSessionLock<T>(_ sessionId: String, admitting admits: () throws -> Bool,
                                   _ body: () throws -> T) throws -> T? {
        guard try FileSystem.exists(sessionFolder(sessionId)) || admits() else { return nil }
        return try withSessionLock(sessionId, body)
    }

    /// Deletes an open session of `owner` with its bytes (tus termination).
    /// False if there is no such open session.
    public func cancelSession(id: String, owner: Owner) throws -> Bool {
        let removed = try writeImmediately { db -> Bool in
            guard let session = try UploadSession.fetchCached(db, id: id), session.owner == owner, session.state == .open else {
                return false
            }
            try UploadSessionChunk.filter(Column("session_id") == id).deleteAll(db)
            try UploadSession.deleteOne(db, key: id)
            return true
        }
        if removed {
            sessionFiles.remove(id)
            FileSystem.removeTree(sessionFolder(id))
        }
        return removed
    }
}
