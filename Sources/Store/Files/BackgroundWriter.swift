import CLinuxShims
import Foundation
import Glibc
import OpenSSLCrypto

/// Writes an upload's bytes, and hashes them when given a hasher, on two
/// helper threads while the request thread keeps receiving the next ones.
///
/// Receiving, hashing and writing in one thread leaves the FastCGI socket
/// undrained while a slice is hashed and written, so nginx and the client
/// stall in lockstep (a 500 MB upload left both cores ~45% idle). With two
/// buffers in flight the socket keeps draining. The bytes, their order and
/// the hash are the same as writing inline.
///
/// Whole aligned megabytes are written with `O_DIRECT` straight from their
/// ``UploadBuffer``, skipping the page cache: an upload is read back rarely
/// and soon by nobody, and taking fresh page-cache memory for every byte was
/// the slowest step of an upload (on the 2-core VM in docs/BENCHMARKS.md,
/// buffered writes ran at ~200 MB/s where `O_DIRECT` ran at ~800). The rest
/// (a tail, an unaligned start, a file system that refuses `O_DIRECT`) is
/// written through the page cache as before; the final fsync makes either
/// durable.
final class BackgroundWriter: @unchecked Sendable {
    /// Offsets, lengths and memory of `O_DIRECT` writes are multiples of this.
    static let directAlignment = UploadBuffer.alignment

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
    /// Submitted buffers not yet both written and hashed, oldest first; the
    /// first is number `firstQueued` in submission order.
    private var queued: [Queued] = []
    private var firstQueued = 0
    /// The next buffer (by number) each helper takes.
    private var nextToWrite = 0
    private var nextToHash = 0
    /// Emptied buffers the request thread can refill.
    private var spare: [UploadBuffer] = []
    private var closing = false
    private var cancelled = false
    private var writesFinished = false
    private var hashingFinished: Bool
    private var failure: Error?
    private var written: Int64 = 0
    private var writebackStarted: Int64 = 0
    /// The same file opened with `O_DIRECT`; nil where the file system refuses it.
    private var directDescriptor: Int32?
    /// Bytes written with `O_DIRECT` (for tests).
    private(set) var directlyWritten: Int64 = 0

    private struct Queued {
        var buffer: UploadBuffer
        var written = false
        var hashed: Bool
    }

    init(descriptor: Int32, hasher: SHA256Hasher?, file: String = "temporary file", offset: Int64 = 0,
         writebackStep: Int64 = 8 << 20, beginWrite: @escaping () throws -> Void = {}, endWrite: @escaping () -> Void = {}) {
        self.descriptor = descriptor
        self.writebackStep = writebackStep
        self.hasher = hasher
        self.file = file
        self.offset = offset
        self.beginWrite = beginWrite
        self.endWrite = endWrite
        hashingFinished = hasher == nil
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&changed, nil)
        if offset % Int64(Self.directAlignment) == 0 {
            let direct = minihost_reopen_for_direct_writes(descriptor)
            if direct >= 0 { directDescriptor = direct }
        }
        spare = [UploadBuffers.shared.take(), UploadBuffers.shared.take()]
        let writer = Thread { [self] in runWrites() }
        writer.name = "blob-writer"
        writer.start()
        if hasher != nil {
            let hashing = Thread { [self] in runHashing() }
            hashing.name = "blob-hasher"
            hashing.start()
        }
    }

    deinit {
        stopDirectWrites()
        // Both helpers have ended (each holds the writer until then): every
        // buffer here is free to reuse.
        for buffer in spare + queued.map(\.buffer) { UploadBuffers.shared.giveBack(buffer) }
        pthread_cond_destroy(&changed)
        pthread_mutex_destroy(&mutex)
    }

    /// An empty buffer to fill, waiting while both are in flight. Throws a
    /// helper's error, if it had one.
    func takeBuffer() throws -> UploadBuffer {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while spare.isEmpty && failure == nil { pthread_cond_wait(&changed, &mutex) }
        if let failure { throw failure }
        let buffer = spare.removeLast()
        buffer.removeAll()
        return buffer
    }

    /// Queues a filled buffer for hashing and writing; it belongs to the
    /// writer from now on.
    func submit(_ buffer: UploadBuffer) throws {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if let failure { throw failure }
        queued.append(Queued(buffer: buffer, hashed: hasher == nil))
        pthread_cond_broadcast(&changed)
    }

    /// Waits until every queued buffer is in the file (the hash may still be
    /// catching up: ``finishHashing()``), and throws the first error a
    /// helper had. No buffer can be submitted after this.
    func drainWrites() throws {
        try stop(waitingFor: \.writesFinished)
    }

    /// After ``drainWrites()``: waits until the hasher has taken in every
    /// byte, and throws the first error a helper had.
    func finishHashing() throws {
        try stop(waitingFor: \.hashingFinished)
    }

    private func stop(waitingFor finished: KeyPath<BackgroundWriter, Bool>) throws {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        closing = true
        pthread_cond_broadcast(&changed)
        while !self[keyPath: finished] { pthread_cond_wait(&changed, &mutex) }
        if let failure { throw failure }
    }

    /// Stops the helpers without caring about queued bytes (the upload failed).
    func cancel() {
        pthread_mutex_lock(&mutex)
        closing = true
        cancelled = true
        pthread_cond_broadcast(&changed)
        while !writesFinished || !hashingFinished { pthread_cond_wait(&changed, &mutex) }
        pthread_mutex_unlock(&mutex)
    }

    /// Writing and hashing each take the queued buffers in order on a thread
    /// of their own, so the last buffers of a request wait for the slower of
    /// the two, not for both one after the other (a tus `PATCH` waited
    /// ~3 ms for its last two megabytes, and acknowledging needs only the
    /// writes).
    private func runWrites() {
        run(\.nextToWrite, consume, mark: { $0.written = true }, finished: \.writesFinished)
    }

    private func runHashing() {
        run(\.nextToHash, hash, mark: { $0.hashed = true }, finished: \.hashingFinished)
    }

    private func run(_ cursor: ReferenceWritableKeyPath<BackgroundWriter, Int>, _ body: (UploadBuffer) -> Error?,
                     mark: (inout Queued) -> Void, finished: ReferenceWritableKeyPath<BackgroundWriter, Bool>) {
        while work(cursor, body, mark: mark) {}
        pthread_mutex_lock(&mutex)
        self[keyPath: finished] = true
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&mutex)
    }

    /// Runs `body` on the next buffer for the helper whose place is
    /// `cursor`, then marks it; false when there is none to run.
    private func work(_ cursor: ReferenceWritableKeyPath<BackgroundWriter, Int>, _ body: (UploadBuffer) -> Error?,
                      mark: (inout Queued) -> Void) -> Bool {
        guard let (number, buffer) = next(cursor) else { return false }
        finish(number, error: body(buffer), mark)
        return true
    }

    private func hash(_ buffer: UploadBuffer) -> Error? {
        do {
            try hasher?.update(buffer.bytes)
            return nil
        } catch {
            return error
        }
    }

    /// The next queued buffer for the helper whose place is `cursor` (and
    /// moves it on), waiting for one; nil once closing with none left, after
    /// a failure, or when cancelled.
    private func next(_ cursor: ReferenceWritableKeyPath<BackgroundWriter, Int>) -> (Int, UploadBuffer)? {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while self[keyPath: cursor] == firstQueued + queued.count && !closing && failure == nil && !cancelled {
            pthread_cond_wait(&changed, &mutex)
        }
        let number = self[keyPath: cursor]
        guard number < firstQueued + queued.count, failure == nil, !cancelled else { return nil }
        self[keyPath: cursor] += 1
        return (number, queued[number - firstQueued].buffer)
    }

    /// Marks buffer `number` done for one helper; a buffer both are done
    /// with goes back to the request thread.
    private func finish(_ number: Int, error: Error?, _ mark: (inout Queued) -> Void) {
        pthread_mutex_lock(&mutex)
        if let error, failure == nil { failure = error }
        mark(&queued[number - firstQueued])
        while let first = queued.first, first.written, first.hashed {
            spare.append(queued.removeFirst().buffer)
            firstQueued += 1
        }
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&mutex)
    }

    /// Whole aligned blocks from aligned memory with `O_DIRECT`; anything
    /// else, or whatever a direct write left, through the page cache.
    private func write(_ bytes: UnsafeRawBufferPointer, at position: Int64) throws {
        var done = 0
        if let directDescriptor, let start = bytes.baseAddress, position % Int64(Self.directAlignment) == 0,
           bytes.count % Self.directAlignment == 0, Int(bitPattern: start) % Self.directAlignment == 0 {
            while done < bytes.count {
                let count = pwrite(directDescriptor, start + done, bytes.count - done, off_t(position + Int64(done)))
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
        guard let directDescriptor else { return }
        close(directDescriptor)
        self.directDescriptor = nil
    }

    private func consume(_ buffer: UploadBuffer) -> Error? {
        do {
            try beginWrite()
            do {
                defer { endWrite() }
                try write(buffer.bytes, at: offset + written)
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
