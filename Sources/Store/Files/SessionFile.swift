import CLinuxShims
import Glibc

/// File operations on session files, with errno turned into ``StorageError``.
enum SessionFile {
    static let ioSize = 1 << 20

    /// Calls `body` with the bytes of `offset..<offset+count` of the file at
    /// `path`, a buffer at a time, read with `O_DIRECT` into a pooled aligned
    /// buffer where the file system allows it.
    ///
    /// Stored bytes were mostly written with `O_DIRECT`, so they aren't in the
    /// page cache, and on the VM in docs/BENCHMARKS.md reading them through it
    /// costs more than the disk read: the kernel takes fresh memory for every
    /// page (a 500 MB tus concatenation spent two thirds of its 2 s copying
    /// out of the page cache).
    static func readFile(_ path: String, offset: Int64 = 0, count: Int64, what: String = "file",
                         _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let (descriptor, direct) = openForReading(path)
        guard descriptor >= 0 else { throw StorageError.fromErrno("open " + what) }
        defer { close(descriptor) }
        let buffer = UploadBuffers.shared.take()
        defer { UploadBuffers.shared.giveBack(buffer) }
        try read(descriptor, direct: direct, offset: offset, count: count, buffer: buffer.memory, body)
    }

    /// `path` opened for reading, with `O_DIRECT` (`direct`) where the file
    /// system allows it; a descriptor of -1 (errno set) when it can't be opened.
    static func openForReading(_ path: String) -> (descriptor: Int32, direct: Bool) {
        let descriptor = minihost_open_for_direct_reads(path)
        return descriptor >= 0 ? (descriptor, true) : (open(path, O_RDONLY | O_CLOEXEC), false)
    }

    /// ``readRangeDirect(_:offset:count:buffer:_:)`` for a descriptor from
    /// ``openForReading(_:)`` that got `O_DIRECT`, else ``readRange(_:offset:count:buffer:_:)``.
    /// `buffer` must be aligned.
    static func read(_ descriptor: Int32, direct: Bool, offset: Int64, count: Int64, buffer: UnsafeMutableRawBufferPointer,
                     _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        if direct {
            try readRangeDirect(descriptor, offset: offset, count: count, buffer: buffer, body)
        } else {
            try readRange(descriptor, offset: offset, count: count, buffer: buffer, body)
        }
    }

    /// Calls `body` with the bytes of `offset..<offset+count`, a buffer at a time.
    static func readRange(_ descriptor: Int32, offset: Int64, count: Int64, buffer: UnsafeMutableRawBufferPointer,
                          _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var position = offset
        let end = offset + count
        while position < end {
            let want = Int(min(Int64(buffer.count), end - position))
            try readFully(descriptor, offset: position, into: buffer, count: want)
            try body(UnsafeRawBufferPointer(start: buffer.baseAddress, count: want))
            position += Int64(want)
        }
    }

    /// ``readRange(_:offset:count:buffer:_:)`` from a descriptor opened with
    /// `O_DIRECT`: each read starts at an aligned offset and asks for whole
    /// blocks (the file's end may cut it short), and `body` gets the part
    /// inside the range. `buffer` must be aligned.
    static func readRangeDirect(_ descriptor: Int32, offset: Int64, count: Int64, buffer: UnsafeMutableRawBufferPointer,
                                _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let alignment = Int64(BackgroundWriter.directAlignment)
        var position = offset
        let end = offset + count
        while position < end {
            let start = position - position % alignment
            let skip = Int(position - start)
            let blocks = (end - start + alignment - 1) / alignment * alignment
            let want = Int(min(Int64(buffer.count), blocks))
            let got = pread(descriptor, buffer.baseAddress!, want, off_t(start))
            if got < 0 && errno == EINTR { continue }
            if got < 0 { throw StorageError.fromErrno("read session file") }
            let usable = min(got - skip, Int(end - position))
            if usable <= 0 { throw StorageError(.io, "file ends before \(end)") }
            try body(UnsafeRawBufferPointer(start: buffer.baseAddress! + skip, count: usable))
            position += Int64(usable)
        }
    }

    /// Reads exactly `count` bytes at `offset` into the start of `buffer`.
    static func readFully(_ descriptor: Int32, offset: Int64, into buffer: UnsafeMutableRawBufferPointer, count: Int) throws {
        var done = 0
        while done < count {
            let got = pread(descriptor, buffer.baseAddress! + done, count - done, off_t(offset + Int64(done)))
            if got < 0 && errno == EINTR { continue }
            if got < 0 { throw StorageError.fromErrno("read session file") }
            if got == 0 { throw StorageError(.io, "file ends before \(offset + Int64(count))") }
            done += got
        }
    }

    static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64,
                         file: String = "session file") throws {
        var done = 0
        while done < bytes.count {
            let written = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset + Int64(done)))
            if written < 0 {
                if errno == EINTR { continue }
                throw StorageError.fromErrno("write " + file)
            }
            done += written
        }
    }
}
