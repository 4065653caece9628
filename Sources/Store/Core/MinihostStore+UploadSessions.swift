import Foundation
import GRDB
import OpenSSLCrypto

/// A new resumable upload's parameters.
public struct SessionRequest: Sendable {
    public var owner: Owner
    public var fileName: String
    public var contentType: String
    public var declaredSize: Int64
    /// Dialect flags to keep until finish (a JSON object as text).
    public var options: String?

    public init(owner: Owner, fileName: String, contentType: String = "application/octet-stream", declaredSize: Int64,
                options: String? = nil) {
        self.owner = owner
        self.fileName = fileName
        self.contentType = contentType
        self.declaredSize = declaredSize
        self.options = options
    }
}

extension MinihostStore {
    /// Opens a session. `maxSize` bounds the declared size; with `quotaBytes`
    /// the owner's stored bytes plus every open session's declared size must fit.
    public func openSession(_ request: SessionRequest, maxSize: Int64, quotaBytes: Int64? = nil,
                            lifetime: TimeInterval = 24 * 3600, now: Date = Date()) throws -> UploadSession {
        guard request.declaredSize > 0, request.declaredSize <= maxSize else {
            throw StorageError(.invalid, "size must be between 1 and \(maxSize) bytes")
        }
        let session = UploadSession(
            id: try SecureRandom.hex(byteCount: 16), ownerKind: request.owner.kind.rawValue, ownerId: request.owner.id,
            fileName: request.fileName, contentType: request.contentType, declaredSize: request.declaredSize,
            options: request.options, state: .open, assemblingSince: nil, uploadId: nil,
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
            """, arguments: [owner.kind.rawValue, owner.id]) ?? 0
        let reserved = try Int64.fetchOne(db, sql: """
            SELECT COALESCE(SUM(declared_size), 0) FROM minihost_upload_sessions
            WHERE owner_kind = ? AND owner_id = ? AND state != 'completed' AND expires_at > ?
            """, arguments: [owner.kind.rawValue, owner.id, now]) ?? 0
        return stored + reserved
    }

    /// The session, if it exists and has not expired.
    public func session(id: String, now: Date = Date()) throws -> UploadSession? {
        guard let session = try read({ try UploadSession.fetchCached($0, id: id) }) else { return nil }
        return session.expiresAt > now || session.state == .completed ? session : nil
    }

    public func chunks(ofSession id: String) throws -> [UploadSessionChunk] {
        try read { try UploadSessionChunk.filter(Column("session_id") == id).order(Column("chunk_index")).fetchAll($0) }
    }

    func sessionFolder(_ id: String) -> String { directory.sessionsPath + "/" + id }
    func chunkPath(_ id: String, _ index: Int64) -> String { sessionFolder(id) + "/\(index).chunk" }
    /// The file chunks are written into in place.
    func sessionDataPath(_ id: String) -> String { sessionFolder(id) + "/data" }

    /// A writer for chunk `index`. `expectedSize` is the chunk's size as the
    /// request announces it (nil if unknown). The session's first chunk fixes
    /// its chunk size; chunks that fit their slot are then written in place.
    /// Whether the session may take the chunk at all is decided when it is
    /// accepted; this only chooses where the bytes go.
    public func makeChunkWriter(sessionId: String, index: Int64, expectedSize: Int64?, now: Date = Date()) throws -> ChunkWriter {
        if let slot = try inPlaceSlot(sessionId: sessionId, index: index, expectedSize: expectedSize, now: now) {
            return ChunkWriter(sessionId: sessionId, index: index, target: .slot(slot), blobs: blobs)
        }
        return ChunkWriter(sessionId: sessionId, index: index, target: .ownFile(try blobs.makeWriter()), blobs: blobs)
    }

    private func inPlaceSlot(sessionId: String, index: Int64, expectedSize: Int64?, now: Date) throws -> ChunkWriter.Slot? {
        guard let expected = expectedSize, expected > 0, index >= 0, sessionFiles.mayWriteInPlace,
              var session = try read({ try UploadSession.fetchCached($0, id: sessionId) }),
              session.state == .open, session.expiresAt > now else { return nil }
        if session.chunkSize == nil {
            try writeImmediately { db in
                try db.execute(sql: "UPDATE minihost_upload_sessions SET chunk_size = ? WHERE id = ? AND chunk_size IS NULL",
                               arguments: [expected, sessionId])
            }
            guard let fresh = try read({ try UploadSession.fetchCached($0, id: sessionId) }) else { return nil }
            session = fresh
        }
        // Slots end where the file would if chunks count from 1, so no write
        // lands far past the declared size.
        guard let chunkSize = session.chunkSize, chunkSize > 0, expected <= chunkSize,
              index < Int64.max / chunkSize, index * chunkSize + expected <= chunkSize + session.declaredSize else { return nil }
        let state = try sessionFiles.state(for: sessionId) { try acknowledgedSpans(sessionId) }
        guard state.claim(index) else { return nil }
        // Checked after claiming: an acknowledgement recorded before our claim
        // is visible now, and acknowledged bytes are never overwritten.
        let recorded = try read { db in
            try UploadSessionChunk.filter(Column("session_id") == sessionId && Column("chunk_index") == index).fetchCount(db)
        }
        guard recorded == 0 else { state.release(index); return nil }
        state.awaitHash(reaching: index * chunkSize, after: index, limit: configuration.chunkHashWait)
        do {
            let descriptor = try openSessionFile(sessionId)
            return ChunkWriter.Slot(state: state, descriptor: descriptor, offset: index * chunkSize, capacity: chunkSize)
        } catch {
            state.release(index)
            throw error
        }
    }

    /// Opens (creating, durably, on first use) the session's in-place file.
    func openSessionFile(_ sessionId: String) throws -> Int32 {
        let path = sessionDataPath(sessionId)
        var descriptor = open(path, O_RDWR | O_CLOEXEC)
        if descriptor < 0 && errno == ENOENT {
            try makeSessionFolder(sessionId)
            // 0644 like every blob: on finish this file becomes one.
            descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            if descriptor >= 0 {
                do { try FileSystem.syncDirectory(sessionFolder(sessionId)) } catch { close(descriptor); throw error }
            }
        }
        guard descriptor >= 0 else { throw StorageError.fromErrno("open session file") }
        return descriptor
    }

    /// Creates the session's folder, durably, if it isn't there yet.
    func makeSessionFolder(_ sessionId: String) throws {
        guard !FileSystem.exists(sessionFolder(sessionId)) else { return }
        try FileSystem.makeDirectory(sessionFolder(sessionId), mode: 0o700)
        try FileSystem.syncDirectory(directory.sessionsPath)
    }

    func acknowledgedSpans(_ sessionId: String) throws -> [ChunkSpan] {
        try chunks(ofSession: sessionId).compactMap { chunk in
            chunk.fileOffset.map { ChunkSpan(index: chunk.chunkIndex, offset: $0, size: chunk.size) }
        }
    }

    /// Makes the writer's bytes durable and records the chunk. Sending the
    /// same index again replaces it. Refused (and the bytes dropped) when the
    /// session is unknown, expired or being finished, the index is past the
    /// declared size, or all chunks together would exceed it.
    public func acceptChunk(_ writer: ChunkWriter, now: Date = Date()) throws {
        let completed: ChunkWriter.Completed
        do {
            completed = try writer.complete()
        } catch {
            writer.abandon()
            throw error
        }
        switch completed {
        case .ownFile(let blob):
            try acceptChunk(sessionId: writer.sessionId, index: writer.index, file: blob, appendOffset: writer.appendOffset,
                            now: now)
        case .inPlace(let span, let state, var continuation, let hashing):
            defer { state.release(span.index) }
            try recordChunk(sessionId: writer.sessionId, index: span.index, size: span.size, appendOffset: writer.appendOffset,
                            now: now) { _ in
                UploadSessionChunk(sessionId: writer.sessionId, chunkIndex: span.index, size: span.size,
                                   sha256: nil, fileOffset: span.offset)
            }
            // The hash ran on beside the fsync and the commit; a hash that
            // failed leaves the chunk to be read back.
            if let hashing, (try? hashing.finishHashing()) == nil { continuation = nil }
            // Hashed as written when it came in order; otherwise the pass
            // reads it back. Either way the pass goes on to chunks that
            // arrived early.
            state.acknowledge(span, hashedWith: continuation)
            state.advanceHashSoon(path: sessionDataPath(writer.sessionId))
        }
    }

    /// Records a chunk whose bytes are complete and fsync'd in `file` (a
    /// chunk in a file of its own). Same rules as ``acceptChunk(_:now:)``;
    /// `file` is removed if refused. A re-sent chunk identical to one already
    /// in the session file is acknowledged without replacing it, so a script
    /// that resumes by sending everything again keeps the fast finish.
    public func acceptChunk(sessionId: String, index: Int64, file: CompletedBlob, appendOffset: Int64? = nil,
                            now: Date = Date()) throws {
        let duplicate = try inPlaceDuplicate(of: file, sessionId: sessionId, index: index)
        var keptExisting = false
        do {
            try recordChunk(sessionId: sessionId, index: index, size: file.size, appendOffset: appendOffset, now: now) { db in
                if let duplicate, try UploadSessionChunk.fetchOne(db, key: ["session_id": sessionId, "chunk_index": index]) == duplicate {
                    keptExisting = true
                    return nil
                }
                try makeSessionFolder(sessionId)
                guard rename(file.temporaryPath, chunkPath(sessionId, index)) == 0 else {
                    throw StorageError.fromErrno("store chunk")
                }
                try FileSystem.syncDirectory(sessionFolder(sessionId))
                return UploadSessionChunk(sessionId: sessionId, chunkIndex: index, size: file.size,
                                          sha256: file.sha256, fileOffset: nil)
            }
        } catch {
            file.discard()
            throw error
        }
        if keptExisting {
            file.discard()
        } else {
            sessionFiles.existingState(for: sessionId)?.supersede(index)
        }
    }

    /// The in-place record of chunk `index` if `file` holds the same bytes.
    /// Acknowledged bytes in the session file never change, so the answer
    /// holds for as long as the record does.
    private func inPlaceDuplicate(of file: CompletedBlob, sessionId: String, index: Int64) throws -> UploadSessionChunk? {
        guard let existing = try read({ db in
            try UploadSessionChunk.fetchOne(db, key: ["session_id": sessionId, "chunk_index": index])
        }), let offset = existing.fileOffset, existing.size == file.size else { return nil }
        let stored = open(sessionDataPath(sessionId), O_RDONLY | O_CLOEXEC)
        let sent = open(file.temporaryPath, O_RDONLY | O_CLOEXEC)
        defer {
            if stored >= 0 { close(stored) }
            if sent >= 0 { close(sent) }
        }
        guard stored >= 0, sent >= 0 else { return nil }
        let count = Int64(SessionFile.ioSize)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: SessionFile.ioSize * 2, alignment: 16)
        defer { buffer.deallocate() }
        let storedBuffer = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<SessionFile.ioSize])
        let sentBuffer = UnsafeMutableRawBufferPointer(rebasing: buffer[SessionFile.ioSize...])
        var position: Int64 = 0
        while position < existing.size {
            let length = Int(min(count, existing.size - position))
            guard (try? SessionFile.readFully(stored, offset: offset + position, into: storedBuffer, count: length)) != nil,
                  (try? SessionFile.readFully(sent, offset: position, into: sentBuffer, count: length)) != nil,
                  memcmp(storedBuffer.baseAddress!, sentBuffer.baseAddress!, length) == 0 else { return nil }
            position += Int64(length)
        }
        return existing
    }

    /// Checks the session can take the chunk, then saves `makeRecord`'s row,
    /// all under the write lock.
    /// `makeRecord` returning nil keeps the existing row. An append (tus)
    /// gives its `appendOffset`, the bytes before it: its caller holds the
    /// session lock, so no sum over the session's records is needed.
    private func recordChunk(sessionId: String, index: Int64, size: Int64, appendOffset: Int64? = nil, now: Date,
                             makeRecord: (Database) throws -> UploadSessionChunk?) throws {
        try writeImmediately { db in
            guard let session = try UploadSession.fetchCached(db, id: sessionId), session.expiresAt > now else {
                throw StorageError(.notFound, "upload session not found")
            }
            guard session.state == .open else { throw StorageError(.invalid, "upload is already being finished") }
            try checkChunk(index: index, size: size, of: session)
            let others = try appendOffset ?? Int64.fetchOne(db.cachedStatement(sql: """
                SELECT COALESCE(SUM(size), 0) FROM minihost_upload_session_chunks WHERE session_id = ? AND chunk_index != ?
                """), arguments: [sessionId, index]) ?? 0
            guard others + size <= session.declaredSize else {
                throw StorageError(.invalid, "chunks exceed the declared size of \(session.declaredSize) bytes")
            }
            try makeRecord(db)?.save(db)
        }
    }

    /// The largest chunk index `session` takes. No chunk is empty, so a
    /// file of N bytes has at most N chunks (counted from 0 or 1), and no
    /// session more than ``StoreConfiguration/maxChunksPerSession``.
    public func maxChunkIndex(of session: UploadSession) -> Int64 {
        min(session.declaredSize, configuration.maxChunksPerSession)
    }

    /// Refuses a chunk index outside the session's geometry, or an empty
    /// chunk (there are no empty sessions). Cheap: callers check it before
    /// taking any bytes, and again under the write lock.
    public func checkChunk(index: Int64, size: Int64? = nil, of session: UploadSession) throws {
        let last = maxChunkIndex(of: session)
        guard index >= 0, index <= last else {
            throw StorageError(.invalid, "chunk \(index) is out of range (0-\(last))")
        }
        if let size, size == 0 { throw StorageError(.invalid, "chunk \(index) is empty") }
    }

    /// Deletes sessions past their expiry (and finished ones a day after it),
    /// with their chunk files, and chunk folders no open session owns. Returns how
    /// many sessions went.
    /// Runs under the write lock, so a chunk being accepted (which creates its
    /// folder and row in one write) is never mistaken for an orphan.
    @discardableResult
    public func expireSessions(now: Date = Date()) throws -> Int {
        try writeImmediately { db in
            // A session a finish call is assembling stays while that claim
            // is live: finish is reading its file.
            let ids = try String.fetchAll(db, sql: """
                SELECT id FROM minihost_upload_sessions
                WHERE (state != 'completed' AND expires_at <= ?
                       AND NOT (state = 'assembling' AND assembling_since > ?))
                   OR (state = 'completed' AND expires_at <= ?)
                """, arguments: [now, now.addingTimeInterval(-Self.assemblyTakeover), now.addingTimeInterval(-24 * 3600)])
            try UploadSession.filter(keys: ids).deleteAll(db)
            // A finished session's folder is normally gone already; one left
            // by a crash holds nothing the stored upload needs.
            let live = Set(try String.fetchAll(db, sql: "SELECT id FROM minihost_upload_sessions WHERE state != 'completed'"))
            for name in FileSystem.list(directory.sessionsPath) where !live.contains(name) && !name.hasPrefix(".") {
                FileSystem.removeTree(directory.sessionsPath + "/" + name)
            }
            for id in ids { sessionFiles.remove(id) }
            return ids.count
        }
    }
}
