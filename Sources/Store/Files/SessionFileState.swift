import Foundation
import Glibc
import OpenSSLCrypto

/// Where one acknowledged chunk's bytes are in its session file.
struct ChunkSpan: Hashable, Sendable {
    var index: Int64
    var offset: Int64
    var size: Int64
}

/// What this process knows about one session file that chunks are written
/// into in place: which slots are being written, which are acknowledged, and
/// how far a running SHA-256 of the file has got.
///
/// The database stays the authority on what is acknowledged; this state only
/// lets writers avoid each other and lets finish skip re-reading the file.
/// A restart loses it, and finish then hashes from the file.
///
/// - Slots: one writer per chunk index at a time (``claim(_:)``). A second
///   request for the same index, or one for an index already acknowledged,
///   writes a file of its own, so acknowledged bytes are never overwritten.
/// - Sealing: finish calls ``seal()``, which waits for writes in progress and
///   then refuses every later one.
final class SessionFileState: @unchecked Sendable {
    /// The running hash of acknowledged chunks that follow each other from `start`.
    final class HashProgress {
        let start: Int64
        private(set) var end: Int64
        private(set) var spans: [ChunkSpan] = []
        private(set) var hasher: SHA256Hasher

        init(start: Int64) throws {
            self.start = start
            end = start
            hasher = try SHA256Hasher()
        }

        /// Takes `hasher`, which went on from this one's state through
        /// `span`'s bytes as they were written; `span` must start at `end`.
        func adopt(_ hasher: SHA256Hasher, through span: ChunkSpan) {
            precondition(span.offset == end)
            self.hasher = hasher
            end += span.size
            spans.append(span)
        }

        /// Hashes `span`'s bytes from `descriptor` (opened with `O_DIRECT`
        /// when `direct`); it must start at `end`.
        func consume(_ span: ChunkSpan, from descriptor: Int32, direct: Bool, buffer: UnsafeMutableRawBufferPointer) throws {
            precondition(span.offset == end)
            try SessionFile.read(descriptor, direct: direct, offset: span.offset, count: span.size, buffer: buffer) {
                try hasher.update($0)
            }
            end += span.size
            spans.append(span)
        }
    }

    private var mutex = pthread_mutex_t()
    private var changed = pthread_cond_t()
    private(set) var sealed = false
    private var claimed: Set<Int64> = []
    private var activeWrites = 0
    /// Acknowledged in-place chunks by offset, which is how the hash finds the next one.
    private var acknowledged: [Int64: ChunkSpan] = [:]
    private var progress: HashProgress?
    private var hashing = false
    /// Hashing passes queued by ``advanceHashSoon(path:)`` and not yet run.
    private var scheduled = 0
    /// Bumped whenever `progress` is dropped, so a hashing pass that ran
    /// unlocked knows its result is stale.
    private var generation = 0
    private(set) var lastUsed = FileSystem.now()
    /// Bytes the running hash read back from the file (for tests).
    private(set) var bytesReadBack: Int64 = 0

    /// The running hash, copied for a writer whose chunk starts exactly
    /// where the hash has got: it hashes its bytes as they are written, and
    /// ``acknowledge(_:hashedWith:)`` takes the result instead of reading
    /// them back. Stale (and ignored) if the hash was dropped meanwhile.
    struct Continuation {
        let hasher: SHA256Hasher
        fileprivate let generation: Int
    }

    init(acknowledged spans: [ChunkSpan]) {
        pthread_mutex_init(&mutex, nil)
        // Monotonic: ``awaitHash(reaching:after:limit:)`` waits with a deadline.
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(&changed, &attributes)
        pthread_condattr_destroy(&attributes)
        for span in spans { acknowledged[span.offset] = span }
    }

    deinit {
        pthread_cond_destroy(&changed)
        pthread_mutex_destroy(&mutex)
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        lastUsed = FileSystem.now()
        return try body()
    }

    /// Takes chunk `index`'s slot; false when it's being written or the file is sealed.
    func claim(_ index: Int64) -> Bool {
        locked {
            guard !sealed, !claimed.contains(index) else { return false }
            claimed.insert(index)
            return true
        }
    }

    /// Gives the slot back: after its chunk was recorded, or abandoned.
    func release(_ index: Int64) {
        locked {
            _ = claimed.remove(index)
            pthread_cond_broadcast(&changed)
        }
    }

    /// Waits, at most `limit`, until the running hash reaches
    /// `offset`, for as long as it is on its way there: chunk `index - 1` is
    /// still being written, or a pass is reading back acknowledged chunks
    /// that lead to `offset`. Call before ``continuation(at:)``.
    ///
    /// Parallel lanes start nearly every chunk before the one before it is
    /// acknowledged. Without a continuation such a chunk is read back to be
    /// hashed, which doubles the disk's traffic; waiting a chunk's time
    /// lets it hash its bytes as they are written. A client sending its
    /// chunks slowly or out of order loses at most `limit` per chunk, and
    /// then it is read back as before.
    func awaitHash(reaching offset: Int64, after index: Int64, limit: Duration) {
        guard index > 0, limit > .zero else { return }
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        deadline.tv_sec += Int(limit.components.seconds)
        deadline.tv_nsec += Int(limit.components.attoseconds / 1_000_000_000)
        if deadline.tv_nsec >= 1_000_000_000 {
            deadline.tv_sec += 1
            deadline.tv_nsec -= 1_000_000_000
        }
        locked {
            while !sealed, acknowledged[offset] == nil, progress?.end != offset || hashing,
                  hashIsComing(to: offset, after: index) {
                if pthread_cond_timedwait(&changed, &mutex, &deadline) == ETIMEDOUT { return }
            }
        }
    }

    /// Whether the running hash is on its way to `offset`: chunk `index - 1`
    /// is being written, or a pass is running and acknowledged chunks lead
    /// without a gap from where the hash is (or would start) to `offset`.
    /// Call with the mutex held.
    private func hashIsComing(to offset: Int64, after index: Int64) -> Bool {
        if claimed.contains(index - 1) { return true }
        guard scheduled > 0 || hashing else { return false }
        var position = progress?.end ?? firstSpanToHash()?.offset
        while let at = position, at < offset, let span = acknowledged[at] { position = at + span.size }
        return position == offset
    }

    /// Where a new running hash starts: chunk 0 if it's here, else
    /// (speculatively, for clients counting from 1) chunk 1. Call with the mutex held.
    private func firstSpanToHash() -> ChunkSpan? {
        acknowledged[0] ?? acknowledged.values.first { $0.index == 1 }
    }

    /// Brackets one write into the file; throws once the file is sealed.
    func beginWrite() throws {
        try locked {
            guard !sealed else { throw StorageError(.invalid, "upload is already being finished") }
            activeWrites += 1
        }
    }

    /// Throws once the upload is being finished: a writer whose bytes are
    /// still buffered learns it before reading more of its body.
    func checkWritable() throws {
        try locked {
            guard !sealed else { throw StorageError(.invalid, "upload is already being finished") }
        }
    }

    func endWrite() {
        locked {
            activeWrites -= 1
            if activeWrites == 0 { pthread_cond_broadcast(&changed) }
        }
    }

    /// A ``Continuation`` for a chunk written at `offset`, or nil when the
    /// running hash isn't exactly there (a chunk out of order, a hash pass
    /// reading meanwhile): that chunk is read back after it is acknowledged.
    func continuation(at offset: Int64) -> Continuation? {
        locked {
            guard !sealed, !hashing else { return nil }
            if let progress {
                guard progress.end == offset, acknowledged[offset] == nil,
                      let copy = try? progress.hasher.copy() else { return nil }
                return Continuation(hasher: copy, generation: generation)
            }
            guard offset == 0, acknowledged[0] == nil, let fresh = try? SHA256Hasher() else { return nil }
            return Continuation(hasher: fresh, generation: generation)
        }
    }

    /// Records an acknowledged in-place chunk, and takes `continuation` as
    /// the running hash if it still follows on (true: nothing to read back).
    /// Chunk 0 arriving after a hash was started at chunk 1 (a client
    /// counting from 0 whose first chunk came late) restarts the hash from
    /// the file's start.
    @discardableResult
    func acknowledge(_ span: ChunkSpan, hashedWith continuation: Continuation? = nil) -> Bool {
        locked {
            acknowledged[span.offset] = span
            if span.offset == 0, let progress, progress.start != 0 { dropProgress() }
            defer { pthread_cond_broadcast(&changed) }  // a writer may wait for the hash to get here
            guard let continuation, continuation.generation == generation, !sealed, !hashing else { return false }
            if let progress {
                guard progress.end == span.offset else { return false }
                progress.adopt(continuation.hasher, through: span)
            } else {
                guard span.offset == 0, let fresh = try? HashProgress(start: 0) else { return false }
                fresh.adopt(continuation.hasher, through: span)
                progress = fresh
            }
            return true
        }
    }

    /// Chunk `index` now lives in a file of its own: its old bytes here no
    /// longer count, nor does a hash that covered them.
    func supersede(_ index: Int64) {
        locked {
            guard let old = acknowledged.values.first(where: { $0.index == index }) else { return }
            acknowledged[old.offset] = nil
            if let progress, progress.spans.contains(old) { dropProgress() }
        }
    }

    private func dropProgress() {
        progress = nil
        generation += 1
    }

    /// Hashes acknowledged chunks that continue the running hash, reading
    /// them back from `path` with `O_DIRECT` where the file system allows
    /// (most of their bytes were written that way, so they aren't in the page
    /// cache, and filling it costs more than the disk read).
    /// Called after each acknowledgement; returns at once if another thread
    /// is already hashing, which then also picks up this chunk.
    func advanceHash(path: String) {
        pthread_mutex_lock(&mutex)
        if hashing || sealed || !startProgressIfNeeded() { pthread_mutex_unlock(&mutex); return }
        hashing = true
        let (descriptor, direct) = SessionFile.openForReading(path)
        let pooled = UploadBuffers.shared.take()
        let buffer = pooled.memory
        defer {
            UploadBuffers.shared.giveBack(pooled)
            if descriptor >= 0 { close(descriptor) }
            hashing = false
            pthread_cond_broadcast(&changed)
            pthread_mutex_unlock(&mutex)
        }
        if descriptor < 0 { dropProgress(); return }
        while !sealed, startProgressIfNeeded(), let running = progress, let next = acknowledged[running.end] {
            let started = generation
            pthread_mutex_unlock(&mutex)
            let failed = (try? running.consume(next, from: descriptor, direct: direct, buffer: buffer)) == nil
            pthread_mutex_lock(&mutex)
            if !failed { bytesReadBack += next.size }
            if failed && generation == started { dropProgress() }
        }
    }

    /// ``advanceHash(path:)`` on a helper thread, so the request that
    /// acknowledged a chunk answers without waiting for its bytes to be
    /// hashed (with 8 MiB writes, SHA-256 is a third of the time between
    /// receiving the last byte and answering). ``seal()`` waits for it.
    func advanceHashSoon(path: String) {
        locked { scheduled += 1 }
        DispatchQueue.global(qos: .utility).async {
            self.advanceHash(path: path)
            self.locked {
                self.scheduled -= 1
                pthread_cond_broadcast(&self.changed)
            }
        }
    }

    /// Makes sure a hash is running (from ``firstSpanToHash()``); false when
    /// there is nothing to start from yet. Call with the mutex held.
    private func startProgressIfNeeded() -> Bool {
        if progress != nil { return true }
        guard let first = firstSpanToHash(), let fresh = try? HashProgress(start: first.offset) else { return false }
        progress = fresh
        return true
    }

    /// Refuses later writes and hashing, and waits for those in progress.
    /// Returns the running hash, if one was kept.
    func seal() -> HashProgress? {
        locked {
            // Queued passes first: they cover chunks already acknowledged.
            while scheduled > 0 { pthread_cond_wait(&changed, &mutex) }
            sealed = true
            pthread_cond_broadcast(&changed)  // writers waiting in awaitHash give up at once
            while activeWrites > 0 || hashing { pthread_cond_wait(&changed, &mutex) }
            return progress
        }
    }
}

/// The in-place states of this process's sessions.
///
/// Only one process may write chunks in place into a data folder, because
/// slots and sealing are coordinated in memory: the first store to ask takes
/// an exclusive lock on `sessions/.in-place.lock` for its lifetime. Any other
/// process (a second worker pool on the same folder) writes every chunk to a
/// file of its own, which is slower but just as safe.
final class SessionFileRegistry: @unchecked Sendable {
    private let lockPath: String
    private var mutex = pthread_mutex_t()
    private var states: [String: SessionFileState] = [:]
    private var lockDescriptor: Int32?
    /// States unused this long are dropped (their sessions have expired).
    private let idleLimit: Double = 2 * 24 * 3600

    init(sessionsPath: String) {
        lockPath = sessionsPath + "/.in-place.lock"
        pthread_mutex_init(&mutex, nil)
    }

    deinit {
        if let lockDescriptor, lockDescriptor >= 0 { close(lockDescriptor) }
        pthread_mutex_destroy(&mutex)
    }

    /// Whether this process writes chunks in place (it holds the lock).
    var mayWriteInPlace: Bool {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if lockDescriptor == nil {
            var descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            if descriptor >= 0 && flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
                close(descriptor)
                descriptor = -1
            }
            lockDescriptor = descriptor
        }
        return lockDescriptor! >= 0
    }

    /// The session's state, made from its acknowledged chunks if new.
    func state(for sessionId: String, acknowledged: () throws -> [ChunkSpan]) rethrows -> SessionFileState {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if let state = states[sessionId] { return state }
        let now = FileSystem.now()
        states = states.filter { now - $0.value.lastUsed < idleLimit }
        let state = SessionFileState(acknowledged: try acknowledged())
        states[sessionId] = state
        return state
    }

    /// The state if this process has one.
    func existingState(for sessionId: String) -> SessionFileState? {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return states[sessionId]
    }

    func remove(_ sessionId: String) {
        pthread_mutex_lock(&mutex)
        states[sessionId] = nil
        pthread_mutex_unlock(&mutex)
    }
}
