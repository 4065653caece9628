import Synchronization

/// Upload buffers kept between requests, so a request doesn't first touch
/// fresh memory for every megabyte it buffers.
///
/// Each writer holds a few 1 MiB buffers (two to fill while its helper
/// writes the third, one aligned for `O_DIRECT`). Allocated per writer,
/// they came from fresh pages every time (blocks this large get pages of
/// their own, see `IdleMemoryRelease` in the executable), and on the VM in
/// docs/BENCHMARKS.md first touching 3 MiB of fresh pages took 2.4–3.7 ms
/// against 0.08 ms to reuse them. A tus upload in 8 MiB `PATCH`es paid that
/// on every `PATCH`: 86,000 page faults in the worker for 500 MB, 2,500 with
/// the buffers kept. At most `limit` buffers of each kind wait here, and
/// ``release()`` frees them all when the worker goes quiet, so idle memory
/// is what it was.
final class UploadBuffers: Sendable {
    static let shared = UploadBuffers()
    static let size = 1 << 20
    /// `O_DIRECT` wants offsets, lengths and memory aligned to this (the
    /// largest logical block size in common use).
    static let alignment = 4096

    /// An aligned buffer owned by the pool or by exactly one writer.
    private struct Aligned: @unchecked Sendable {
        let buffer: UnsafeMutableRawBufferPointer
    }

    let limit: Int
    private let arrays = Mutex<[[UInt8]]>([])
    private let aligned = Mutex<[Aligned]>([])

    init(limit: Int = 4) {
        self.limit = limit
    }

    /// An empty array with room for ``size`` bytes.
    func takeArray() -> [UInt8] {
        if var array = arrays.withLock({ $0.popLast() }) {
            array.removeAll(keepingCapacity: true)
            return array
        }
        var array = [UInt8]()
        array.reserveCapacity(Self.size)
        return array
    }

    /// Keeps `array` for the next writer; the caller must not use it again.
    func giveBack(_ array: [UInt8]) {
        guard array.capacity >= Self.size else { return }
        arrays.withLock { arrays in
            if arrays.count < limit { arrays.append(array) }
        }
    }

    /// ``size`` bytes at an address aligned to ``alignment``.
    func takeAligned() -> UnsafeMutableRawBufferPointer {
        aligned.withLock { $0.popLast() }?.buffer
            ?? .allocate(byteCount: Self.size, alignment: Self.alignment)
    }

    /// Keeps a buffer from ``takeAligned()``; the caller must not use it again.
    func giveBack(aligned buffer: UnsafeMutableRawBufferPointer) {
        let kept = aligned.withLock { pool -> Bool in
            guard pool.count < limit else { return false }
            pool.append(Aligned(buffer: buffer))
            return true
        }
        if !kept { buffer.deallocate() }
    }

    /// Frees every buffer waiting here. Returns how many.
    @discardableResult
    func release() -> Int {
        let freedArrays = arrays.withLock { arrays -> Int in
            defer { arrays = [] }
            return arrays.count
        }
        let freedAligned = aligned.withLock { pool -> [Aligned] in
            defer { pool = [] }
            return pool
        }
        for entry in freedAligned { entry.buffer.deallocate() }
        return freedArrays + freedAligned.count
    }

    /// Buffers waiting here (for tests).
    var waiting: Int { arrays.withLock { $0.count } + aligned.withLock { $0.count } }
}
