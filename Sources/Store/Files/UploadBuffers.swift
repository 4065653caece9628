import Synchronization

/// Upload buffers kept between requests, so a request doesn't first touch
/// fresh memory for every megabyte it buffers.
///
/// Each writer holds three ``UploadBuffer``s (one to fill while its helpers
/// write and hash the others); a read-back holds one. Allocated per writer,
/// they came from fresh pages every time (blocks this large get pages of
/// their own, see `IdleMemoryRelease` in the executable), and on the VM in
/// docs/BENCHMARKS.md first touching 3 MiB of fresh pages took 2.4–3.7 ms
/// against 0.08 ms to reuse them. A tus upload in 8 MiB `PATCH`es paid that
/// on every `PATCH`: 86,000 page faults in the worker for 500 MB, 2,500 with
/// the buffers kept. At most `limit` buffers wait here, and ``release()``
/// frees them all when the worker goes quiet, so idle memory is what it was.
final class UploadBuffers: Sendable {
    static let shared = UploadBuffers()

    let limit: Int
    private let pool = Mutex<[UploadBuffer]>([])

    init(limit: Int = 8) {
        self.limit = limit
    }

    /// An empty buffer.
    func take() -> UploadBuffer {
        guard let buffer = pool.withLock({ $0.popLast() }) else { return UploadBuffer() }
        buffer.removeAll()
        return buffer
    }

    /// Keeps `buffer` for the next writer; the caller must not use it again.
    func giveBack(_ buffer: UploadBuffer) {
        pool.withLock { pool in
            if pool.count < limit { pool.append(buffer) }
        }
    }

    /// Frees every buffer waiting here. Returns how many.
    @discardableResult
    func release() -> Int {
        let freed = pool.withLock { pool -> [UploadBuffer] in
            defer { pool = [] }
            return pool
        }
        return freed.count
    }

    /// Buffers waiting here (for tests).
    var waiting: Int { pool.withLock { $0.count } }
}
