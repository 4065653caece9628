import CLinuxShims
import Foundation
import Glibc
import OpenSSLCrypto

/// Hashes (for a blob) and writes an upload's bytes on a helper thread while
/// the request thread keeps receiving the next ones.
///
/// Receiving, hashing and writing in one thread leaves the FastCGI socket
/// undrained while a slice is hashed and written, so nginx and the client
/// stall in lockstep (a 500 MB upload left both cores ~45% idle). With two
/// buffers in flight the socket keeps draining. The bytes, their order and
/// the hash are the same as writing inline.
///
/// Whole aligned megabytes are written with `O_DIRECT` from one aligned
/// buffer the helper reuses, skipping the page cache: an upload is read
/// back rarely and soon by nobody, and taking fresh page-cache memory for
/// every byte was the slowest step of an upload (on the 2-core VM in
/// docs/BENCHMARKS.md, buffered writes ran at ~200 MB/s where `O_DIRECT`
/// ran at ~800). The rest (a tail, an unaligned start, a file system that
/// refuses `O_DIRECT`) is written through the page cache as before; the
/// final fsync makes either durable.
final class BackgroundWriter: @unchecked Sendable {
    static let bufferSize = UploadBuffers.size
    /// Offsets, lengths and memory of `O_DIRECT` writes are multiples of this.
    static let directAlignment = UploadBuffers.alignment

    private let descriptor: Int32
    /// Writeback starts every this many bytes, so the final fsync waits for
    /// the last few, not the whole file.
    private let writebackStep: Int64
    private let hasher: SHA256Hasher?
    /// What the file is, for errors.
    private let file: String
    /// Where the first byte goes in the file.
    private let offset: Int64
    /// Around each write, on the helper thread: a session file refuses writes
    /// once its upload is being finished.
    private let beginWrite: () throws -> Void
    private let endWrite: () -> Void
    private var mutex = pthread_mutex_t()
    private var changed = pthread_cond_t()
    /// Filled buffers waiting for the helper, oldest first.
    private var pending: [[UInt8]] = []
    /// Emptied buffers the request thread can refill.
    private var spare: [[UInt8]] = []
    private var closing = false
    private var finished = false
    private var failure: Error?
    private var written: Int64 = 0
    private var writebackStarted: Int64 = 0
    /// The same file opened with `O_DIRECT`, and the aligned buffer its
    /// writes come from; nil where the file system refuses it.
    private var direct: (descriptor: Int32, buffer: UnsafeMutableRawBufferPointer)?
    /// Bytes written with `O_DIRECT` (for tests).
    private(set) var directlyWritten: Int64 = 0

    init(descriptor: Int32, hasher: SHA256Hasher?, file: String = "temporary file", offset: Int64 = 0,
         writebackStep: Int64 = 8 << 20, beginWrite: @escaping () throws -> Void = {}, endWrite: @escaping () -> Void = {}) {
        self.descriptor = descriptor
        self.writebackStep = writebackStep
        self.hasher = hasher
        self.file = file
        self.offset = offset
        self.beginWrite = beginWrite
        self.endWrite = endWrite
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&changed, nil)
        if offset % Int64(Self.directAlignment) == 0 {
            let directDescriptor = minihost_reopen_for_direct_writes(descriptor)
            if directDescriptor >= 0 {
                direct = (directDescriptor, UploadBuffers.shared.takeAligned())
            }
        }
        spare = [UploadBuffers.shared.takeArray(), UploadBuffers.shared.takeArray()]
        let thread = Thread { [self] in run() }
        thread.name = "blob-writer"
        thread.start()
    }

    deinit {
        stopDirectWrites()
        // The helper has ended (it holds the writer until then): every
        // buffer here is free to reuse.
        for buffer in spare + pending { UploadBuffers.shared.giveBack(buffer) }
        pthread_cond_destroy(&changed)
        pthread_mutex_destroy(&mutex)
    }

    /// An empty buffer to fill, waiting while both are in flight. Throws the
    /// helper's error, if it had one.
    func takeBuffer() throws -> [UInt8] {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while spare.isEmpty && failure == nil { pthread_cond_wait(&changed, &mutex) }
        if let failure { throw failure }
        var buffer = spare.removeLast()
        buffer.removeAll(keepingCapacity: true)
        return buffer
    }

    /// Queues a filled buffer for hashing and writing.
    func submit(_ buffer: [UInt8]) throws {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if let failure { throw failure }
        pending.append(buffer)
        pthread_cond_broadcast(&changed)
    }

    /// Waits until every queued buffer is written, stops the helper, and
    /// throws its error if it had one.
    func drain() throws {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        closing = true
        pthread_cond_broadcast(&changed)
        while !finished { pthread_cond_wait(&changed, &mutex) }
        if let failure { throw failure }
    }

    /// Stops the helper without caring about queued bytes (the upload failed).
    func cancel() {
        pthread_mutex_lock(&mutex)
        pending.removeAll()
        closing = true
        pthread_cond_broadcast(&changed)
        while !finished { pthread_cond_wait(&changed, &mutex) }
        pthread_mutex_unlock(&mutex)
    }

    private func run() {
        while true {
            pthread_mutex_lock(&mutex)
            while pending.isEmpty && !closing { pthread_cond_wait(&changed, &mutex) }
            if pending.isEmpty || failure != nil {
                finished = true
                pthread_cond_broadcast(&changed)
                pthread_mutex_unlock(&mutex)
                return
            }
            let buffer = pending.removeFirst()
            pthread_mutex_unlock(&mutex)

            let error = consume(buffer)

            pthread_mutex_lock(&mutex)
            if let error { failure = error }
            spare.append(buffer)
            pthread_cond_broadcast(&changed)
            pthread_mutex_unlock(&mutex)
        }
    }

    /// Aligned whole blocks from the aligned buffer with `O_DIRECT`; anything
    /// else, or whatever a direct write left, through the page cache.
    private func write(_ bytes: UnsafeRawBufferPointer, at position: Int64) throws {
        var done = 0
        if let direct, position % Int64(Self.directAlignment) == 0, bytes.count % Self.directAlignment == 0,
           bytes.count <= direct.buffer.count {
            direct.buffer.copyMemory(from: bytes)
            while done < bytes.count {
                let count = pwrite(direct.descriptor, direct.buffer.baseAddress! + done, bytes.count - done,
                                   off_t(position + Int64(done)))
                if count < 0 && errno == EINTR { continue }
                if count < 0 && errno == EINVAL {
                    // The file system wants a larger alignment after all.
                    stopDirectWrites()
                    break
                }
                if count < 0 { throw StorageError.fromErrno("write " + file) }
                done += count
                if done % Self.directAlignment != 0 { break }  // short: the rest goes buffered
            }
            directlyWritten += Int64(done)
        }
        if done < bytes.count {
            try SessionFile.writeAll(descriptor, UnsafeRawBufferPointer(rebasing: bytes[done...]),
                                     at: position + Int64(done), file: file)
        }
    }

    private func stopDirectWrites() {
        guard let direct else { return }
        close(direct.descriptor)
        UploadBuffers.shared.giveBack(aligned: direct.buffer)
        self.direct = nil
    }

    private func consume(_ buffer: [UInt8]) -> Error? {
        do {
            try buffer.withUnsafeBytes { bytes in
                try hasher?.update(bytes)
                try beginWrite()
                defer { endWrite() }
                try write(bytes, at: offset + written)
            }
            written += Int64(buffer.count)
            // Start writing to disk while the rest arrives, so the final
            // fsync waits for the last few megabytes, not the whole file.
            if written - writebackStarted >= writebackStep {
                _ = minihost_start_writeback(descriptor, off_t(offset + writebackStarted), off_t(written - writebackStarted))
                writebackStarted = written
            }
            return nil
        } catch {
            return error
        }
    }
}
