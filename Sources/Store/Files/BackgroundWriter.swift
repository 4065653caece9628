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
final class BackgroundWriter: @unchecked Sendable {
    static let bufferSize = 1 << 20

    private let descriptor: Int32
    /// Writeback starts every this many bytes, so the final fsync waits for
    /// the last few, not the whole file.
    private let writebackStep: Int64
    private let hasher: SHA256Hasher?
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

    init(descriptor: Int32, hasher: SHA256Hasher?, offset: Int64 = 0, writebackStep: Int64 = 8 << 20,
         beginWrite: @escaping () throws -> Void = {}, endWrite: @escaping () -> Void = {}) {
        self.descriptor = descriptor
        self.writebackStep = writebackStep
        self.hasher = hasher
        self.offset = offset
        self.beginWrite = beginWrite
        self.endWrite = endWrite
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&changed, nil)
        spare = [[UInt8](), [UInt8]()]
        for index in spare.indices { spare[index].reserveCapacity(Self.bufferSize) }
        let thread = Thread { [self] in run() }
        thread.name = "blob-writer"
        thread.start()
    }

    deinit {
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

    private func consume(_ buffer: [UInt8]) -> Error? {
        do {
            try buffer.withUnsafeBytes { bytes in
                try hasher?.update(bytes)
                try beginWrite()
                defer { endWrite() }
                try SessionFile.writeAll(descriptor, bytes, at: offset + written, file: hasher == nil ? "session file" : "temporary file")
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
