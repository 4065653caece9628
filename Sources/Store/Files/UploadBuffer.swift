/// A megabyte of upload bytes on their way to disk: filled by the request
/// thread, then written and hashed by a ``BackgroundWriter``'s helpers.
///
/// Its memory is aligned for `O_DIRECT`, so a whole megabyte is written
/// straight from it. Filling `[UInt8]` arrays meant copying each megabyte
/// once more into an aligned buffer before the write: ~6 % of the worker's
/// CPU in a 500 MB upload (docs/BENCHMARKS.md).
///
/// One owner at a time (the pool, a writer, or a helper working on it); a
/// ``BackgroundWriter`` hands it between them under its mutex.
final class UploadBuffer: @unchecked Sendable {
    static let capacity = 1 << 20
    /// `O_DIRECT` wants offsets, lengths and memory aligned to this (the
    /// largest logical block size in common use).
    static let alignment = 4096

    /// All ``capacity`` bytes; the first ``count`` hold data.
    let memory: UnsafeMutableRawBufferPointer
    private(set) var count = 0

    init() {
        memory = .allocate(byteCount: Self.capacity, alignment: Self.alignment)
    }

    deinit {
        memory.deallocate()
    }

    var isEmpty: Bool { count == 0 }
    var isFull: Bool { count == Self.capacity }

    /// The bytes held.
    var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: memory.baseAddress, count: count)
    }

    /// Copies as much of the start of `source` as fits; returns how many bytes that was.
    @discardableResult
    func append(_ source: UnsafeRawBufferPointer) -> Int {
        let taken = min(Self.capacity - count, source.count)
        guard taken > 0 else { return 0 }
        (memory.baseAddress! + count).copyMemory(from: source.baseAddress!, byteCount: taken)
        count += taken
        return taken
    }

    /// Empties it for refilling.
    func removeAll() {
        count = 0
    }
}
