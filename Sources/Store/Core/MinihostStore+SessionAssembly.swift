import CLinuxShims
import Foundation
import GRDB
import Glibc
import OpenSSLCrypto

extension MinihostStore {
    /// How long a finish call may hold a session in `assembling` before
    /// another call may take over (the first one crashed).
    static let assemblyTakeover: TimeInterval = 600

    /// Turns the chunks into one stored upload. Safe to call twice or
    /// concurrently: one call assembles, the others see `inProgress` and then
    /// `completed` with the same upload. Missing chunks or too few bytes are
    /// `invalid`, naming what is missing; nothing changes then.
    ///
    /// When every chunk was written in place and they follow each other, the
    /// session file already is the upload: it is hashed (mostly done as the
    /// chunks arrived) and linked into the blob store. Otherwise the chunks
    /// are copied into a new blob.
    public func finishSession(id: String, owner: Owner, now: Date = Date(),
                              configure: (inout Upload) throws -> Void = { _ in }) throws -> SessionFinish {
        try finishSession(id: id, owner: owner, now: now, configure: configure, attach: { _, _ in })
    }

    /// ``finishSession(id:owner:now:configure:)`` that also runs `attach` in
    /// the transaction recording the upload: a side store's row for it.
    func finishSession(id: String, owner: Owner, now: Date = Date(), configure: (inout Upload) throws -> Void,
                       attach: (Database, Upload) throws -> Void) throws -> SessionFinish {
        let claim: FinishClaim = try writeImmediately { db in
            guard let session = try UploadSession.fetchCached(db, id: id), session.owner == owner else {
                throw StorageError(.notFound, "upload session not found")
            }
            if session.state == .completed { return .alreadyCompleted }
            guard session.expiresAt > now else { throw StorageError(.notFound, "upload session not found") }
            // A live claim makes others wait; one whose process is gone (a
            // crashed worker) is taken over at once, any other after ten minutes.
            if session.state == .assembling, let since = session.assemblingSince,
               now.timeIntervalSince(since) < Self.assemblyTakeover,
               session.assemblingBy.map(ProcessIdentity.isAlive) ?? true { return .busy }
            let chunks = try UploadSessionChunk.filter(Column("session_id") == id).order(Column("chunk_index")).fetchAll(db)
            let missing = Self.missingChunks(chunks, naming: configuration.missingChunksNamed)
            guard missing.count == 0 else { throw StorageError(.invalid, "missing chunks: \(missing)") }
            let received = chunks.reduce(Int64(0)) { $0 + $1.size }
            guard received == session.declaredSize else {
                throw StorageError(.invalid, "received \(received) of \(session.declaredSize) bytes; chunks after \(chunks.last?.chunkIndex ?? 0) are missing")
            }
            var assembling = session
            assembling.state = .assembling
            assembling.assemblingSince = now
            assembling.assemblingBy = ProcessIdentity.current
            assembling.chunkSize = UploadSession.sealedChunkSize
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
        var collapsed = false
        do {
            let upload = try assemble(session, chunks, now: now, collapsed: &collapsed, configure: configure, attach: attach)
            sessionFiles.remove(id)
            removeSessionFolder(id, size: session.declaredSize)
            return .completed(upload)
        } catch {
            // Chunks stay as they were, and the next finish call may start
            // over at once. Once the file was collapsed its chunks must stay
            // as recorded (see SessionDataFile), so it isn't reopened for chunks.
            _ = try? writeImmediately { db in
                try UploadSession.filter(Column("id") == id).updateAll(
                    db, Column("state").set(to: collapsed ? "assembling" : "open"), Column("assembling_since").set(to: nil))
            }
            throw error
        }
    }

    /// Freeing copied chunks (or a duplicate's session file) takes a while
    /// for a large file: such a folder is moved aside and freed on a helper
    /// thread. A crash first leaves it to the temporary sweep.
    private func removeSessionFolder(_ id: String, size: Int64) {
        guard size >= 64 << 20 else { return FileSystem.removeTree(sessionFolder(id)) }
        let discarded = directory.temporaryPath + "/session-\(id).done"
        if rename(sessionFolder(id), discarded) == 0 {
            Thread.detachNewThread { FileSystem.removeTree(discarded) }
        }
    }

    private enum FinishClaim {
        case alreadyCompleted, busy
        case assemble(UploadSession, [UploadSessionChunk])
    }

    /// Indices missing between the first chunk (0 or 1) and the last one:
    /// the first `naming` of them and how many in all. Walks the gaps between
    /// the sorted chunks, so the work is bounded by the chunk count, never by
    /// how large an index is.
    static func missingChunks(_ chunks: [UploadSessionChunk], naming: Int) -> MissingChunks {
        let indices = chunks.map(\.chunkIndex).sorted()
        var missing = MissingChunks()
        var expected: Int64 = indices.first == 0 ? 0 : 1
        for index in indices where index >= expected {
            if index > expected {
                missing.count += index - expected
                var next = expected
                while next < index && missing.named.count < naming {
                    missing.named.append(next)
                    next += 1
                }
            }
            expected = index + 1
        }
        return missing
    }

    private func assemble(_ session: UploadSession, _ chunks: [UploadSessionChunk], now: Date, collapsed: inout Bool,
                          configure: (inout Upload) throws -> Void,
                          attach: (Database, Upload) throws -> Void) throws -> Upload {
        // Waits for writes still in progress and stops the running hash.
        let progress = sessionFiles.existingState(for: session.id)?.seal()
        let file = try SessionDataFile(path: sessionDataPath(session.id), chunks: chunks)
        defer { file.close() }
        let blob: CompletedBlob
        if let start = file.contiguousStart(declaredSize: session.declaredSize),
           let linked = try file.finishInPlace(start: start, size: session.declaredSize, progress: progress,
                                               collapsed: &collapsed) {
            blob = linked
        } else {
            blob = try copyChunks(session, chunks, from: file)
        }
        #if DEBUG
        // After the session file was trimmed and collapsed, before the commit.
        TestCrashPoint.reached("finish-before-commit")
        #endif
        return try commitUpload(blob, owner: session.owner, fileName: session.fileName, contentType: session.contentType,
                                now: now, configure: configure, alsoInTransaction: { db, upload in
                                    try UploadSession.filter(Column("id") == session.id).updateAll(
                                        db, Column("state").set(to: "completed"), Column("upload_id").set(to: upload.id))
                                    try UploadSessionChunk.filter(Column("session_id") == session.id).deleteAll(db)
                                    try attach(db, upload)
                                })
    }

    /// Copies the chunks, in index order, into a new blob.
    private func copyChunks(_ session: UploadSession, _ chunks: [UploadSessionChunk],
                            from file: SessionDataFile) throws -> CompletedBlob {
        let writer = try blobs.makeWriter()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: SessionFile.ioSize, alignment: 16)
        defer { buffer.deallocate() }
        do {
            for chunk in chunks {
                if let offset = chunk.fileOffset {
                    try file.read(offset: offset, count: chunk.size, buffer: buffer) { try writer.write($0) }
                    continue
                }
                try SessionFile.readFile(chunkPath(session.id, chunk.chunkIndex), count: chunk.size,
                                         what: "chunk \(chunk.chunkIndex)") { try writer.write($0) }
            }
        } catch {
            writer.abandon()
            throw error
        }
        let blob = try writer.finish()
        guard blob.size == session.declaredSize else {
            blob.discard()
            throw StorageError(.io, "assembled \(blob.size) bytes, expected \(session.declaredSize)")
        }
        return blob
    }

    private func completedUpload(ofSession id: String) throws -> Upload? {
        try read { db in
            try Upload.fetchOne(db, sql: """
                SELECT u.* FROM minihost_uploads u JOIN minihost_upload_sessions s ON s.upload_id = u.id WHERE s.id = ?
                """, arguments: [id])
        }
    }
}

/// A session's in-place file as finish finds it.
///
/// Chunks counted from 1 leave the first slot empty. Finish removes it with
/// `FALLOC_FL_COLLAPSE_RANGE`, which shifts the data down by `shift` bytes
/// while the database still records the old offsets. The file's size says
/// whether that happened: before, it ends exactly where the last in-place
/// chunk does; after, `shift` bytes earlier. Nothing else shortens it, so a
/// retried finish (after a failure, or a crash) reads the right bytes.
struct SessionDataFile {
    let path: String
    let chunks: [UploadSessionChunk]
    private let descriptor: Int32
    /// How far the data sits below the recorded offsets.
    let shift: Int64
    /// The file's size when opened.
    private let size: Int64

    init(path: String, chunks: [UploadSessionChunk]) throws {
        self.path = path
        self.chunks = chunks
        let inPlaceEnd = chunks.compactMap { chunk in chunk.fileOffset.map { $0 + chunk.size } }.max()
        guard let inPlaceEnd else {
            (descriptor, shift, size) = (-1, 0, 0)
            return
        }
        descriptor = open(path, O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { throw StorageError.fromErrno("open session file") }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            Glibc.close(descriptor)
            throw StorageError.fromErrno("stat session file")
        }
        size = Int64(info.st_size)
        shift = max(0, inPlaceEnd - size)
    }

    func close() {
        if descriptor >= 0 { Glibc.close(descriptor) }
    }

    func read(offset: Int64, count: Int64, buffer: UnsafeMutableRawBufferPointer,
              _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try SessionFile.readRange(descriptor, offset: offset - shift, count: count, buffer: buffer, body)
    }

    /// Where the upload starts in the file (after any shift), if every chunk
    /// is in place and each follows the one before.
    func contiguousStart(declaredSize: Int64) -> Int64? {
        guard let first = chunks.first?.fileOffset else { return nil }
        var expected = first
        for chunk in chunks {
            guard chunk.fileOffset == expected else { return nil }
            expected += chunk.size
        }
        guard expected - first == declaredSize, first >= shift else { return nil }
        return first - shift
    }

    /// Trims the file to the upload's bytes and hashes them (continuing
    /// `progress` when it covers a prefix), ready to be linked as a blob. Nil
    /// when the file system can't remove a leading empty slot: the caller
    /// copies instead.
    func finishInPlace(start: Int64, size: Int64, progress: SessionFileState.HashProgress?,
                       collapsed: inout Bool) throws -> CompletedBlob? {
        if self.size > start + size {
            // Bytes past the last chunk: a write that was never acknowledged.
            guard ftruncate(descriptor, off_t(start + size)) == 0 else { throw StorageError.fromErrno("truncate session file") }
        }
        let hasher: SHA256Hasher
        var hashed = start
        if shift == 0, let progress, progress.start == start, progress.spans == prefixSpans(progress.spans.count) {
            hasher = progress.hasher
            hashed = progress.end
        } else {
            hasher = try SHA256Hasher()
        }
        try SessionFile.readFile(path, offset: hashed, count: start + size - hashed, what: "session file") {
            try hasher.update($0)
        }
        let digest = Hex.encode(try hasher.finalize())
        if start > 0 {
            guard minihost_collapse_range(descriptor, 0, off_t(start)) == 0 else {
                if errno == EOPNOTSUPP || errno == EINVAL { return nil }
                throw StorageError.fromErrno("collapse session file")
            }
            collapsed = true
        }
        if fsync(descriptor) != 0 { throw StorageError.fromErrno("fsync session file") }
        return CompletedBlob(linking: path, sha256: digest, size: size)
    }

    private func prefixSpans(_ count: Int) -> [ChunkSpan] {
        guard count <= chunks.count else { return [] }
        return chunks.prefix(count).map { ChunkSpan(index: $0.chunkIndex, offset: $0.fileOffset ?? -1, size: $0.size) }
    }
}

/// The chunks a finish found missing: the first few by index, and the count.
struct MissingChunks: CustomStringConvertible {
    var named: [Int64] = []
    var count: Int64 = 0

    /// `3,4,9` or `3,4,9,… (120 in all)`.
    var description: String {
        let list = named.map(String.init).joined(separator: ",")
        return count > Int64(named.count) ? list + ",… (\(count) in all)" : list
    }
}
