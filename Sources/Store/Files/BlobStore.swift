import Foundation
import Glibc
import OpenSSLCrypto

/// Content-addressed file bytes under `blobs/aa/bb/<sha256>`.
///
/// Bytes are written to `tmp/`, fsync'd, and only then renamed into place, so a
/// blob path always holds a complete file. Placing and removing blobs happens
/// inside the database's write transaction (see ``MinihostStore``), which makes
/// "is this blob still referenced?" and "delete it" one step.
public struct BlobStore: Sendable {
    public let directory: DataDirectory

    public init(directory: DataDirectory) {
        self.directory = directory
    }

    /// `aa/bb/<hash>`, the path below the blob root that nginx serves.
    public func relativePath(for sha256: String) -> String {
        let utf8 = Array(sha256.utf8)
        return "\(String(decoding: utf8[0..<2], as: UTF8.self))/\(String(decoding: utf8[2..<4], as: UTF8.self))/\(sha256)"
    }

    public func path(for sha256: String) -> String {
        directory.blobsPath + "/" + relativePath(for: sha256)
    }

    /// A new temporary file to stream bytes into.
    public func makeWriter() throws -> BlobWriter {
        try BlobWriter(temporaryDirectory: directory.temporaryPath)
    }

    /// Moves a finished temporary file to its content address. Returns false
    /// when the blob already existed: the caller then drops the copy, after
    /// releasing the write lock (freeing a large file takes a while).
    func place(_ file: CompletedBlob) throws -> Bool {
        let target = path(for: file.sha256)
        if FileSystem.exists(target) { return false }
        let outer = directory.blobsPath + "/" + String(file.sha256.prefix(2))
        let inner = outer + "/" + String(file.sha256.dropFirst(2).prefix(2))
        // A new shard folder is only durable once its parent is synced too.
        if try FileSystem.makeDirectoryIfMissing(outer, mode: 0o755) { try FileSystem.syncDirectory(directory.blobsPath) }
        if try FileSystem.makeDirectoryIfMissing(inner, mode: 0o755) { try FileSystem.syncDirectory(outer) }
        // A vanished source (a temporary file that `gc --temporary-age 0`
        // swept mid-upload) is an I/O failure, not "not found": nothing is
        // recorded and the client gets a 500, never a 404 for its own upload.
        if file.placedByLink {
            guard link(file.temporaryPath, target) == 0 else { throw Self.placementError("link blob") }
        } else {
            guard rename(file.temporaryPath, target) == 0 else { throw Self.placementError("rename blob") }
        }
        try FileSystem.syncDirectory(inner)
        return true
    }

    private static func placementError(_ operation: String) -> StorageError {
        let error = StorageError.fromErrno(operation)
        return error.code == .notFound ? StorageError(.io, error.detail) : error
    }

    func remove(_ sha256: String) {
        FileSystem.remove(path(for: sha256))
    }

    /// Every blob hash on disk (for `gc` and `check`).
    public func allHashes() -> [String] {
        var hashes: [String] = []
        for outer in FileSystem.list(directory.blobsPath) where outer.utf8.count == 2 {
            for inner in FileSystem.list(directory.blobsPath + "/" + outer) where inner.utf8.count == 2 {
                for name in FileSystem.list(directory.blobsPath + "/" + outer + "/" + inner)
                where Hex.isLowercaseHex(name, length: 64) && name.hasPrefix(outer + inner) {
                    hashes.append(name)
                }
            }
        }
        return hashes
    }

    /// Re-hashes a blob; nil when it can't be read.
    public func computeHash(of sha256: String) -> String? {
        let descriptor = open(path(for: sha256), O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0, let hasher = try? SHA256Hasher() else { return nil }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count < 0 { return nil }
            if count == 0 { break }
            guard (try? buffer.withUnsafeBytes({ try hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<count])) })) != nil else { return nil }
        }
        return (try? hasher.finalize()).map(Hex.encode)
    }

    /// Removes temporary files (and finished sessions' folders) not written to
    /// for `age` seconds: what a failed, cancelled or interrupted upload, or a
    /// crash, left behind. Returns how many went.
    @discardableResult
    public func sweepTemporaryFiles(olderThan age: Double) -> Int {
        let cutoff = FileSystem.now() - age
        var removed = 0
        for name in FileSystem.list(directory.temporaryPath) {
            let path = directory.temporaryPath + "/" + name
            if let time = FileSystem.modificationTime(path), time < cutoff {
                if FileSystem.isDirectory(path) { FileSystem.removeTree(path) } else { FileSystem.remove(path) }
                removed += 1
            }
        }
        return removed
    }
}

/// Bytes on their way into the blob store: written to a temporary file and
/// hashed as they arrive. Call ``finish()`` to get a ``CompletedBlob``; a writer
/// dropped without finishing deletes its file.
///
/// Whole megabytes go to a ``BackgroundWriter`` so receiving, writing and
/// hashing overlap; a body under a megabyte is written at ``finish()``.
public final class BlobWriter {
    public let temporaryPath: String
    public private(set) var size: Int64 = 0
    private var descriptor: Int32
    private let hasher: SHA256Hasher
    private var done = false
    /// nil once finished or abandoned.
    private var buffer: UploadBuffer? = UploadBuffers.shared.take()
    private var background: BackgroundWriter?

    init(temporaryDirectory: String) throws {
        temporaryPath = temporaryDirectory + "/upload-" + (try SecureRandom.hex(byteCount: 16)) + ".part"
        descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw StorageError.fromErrno("create temporary file") }
        hasher = try SHA256Hasher()
    }

    deinit {
        if !done { abandon() }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard var filling = buffer else { throw StorageError(.invalid, "blob writer already finished") }
        var rest = bytes
        while !rest.isEmpty {
            rest = UnsafeRawBufferPointer(rebasing: rest[filling.append(rest)...])
            if filling.isFull { filling = try flushBuffer(filling) }
        }
        size += Int64(bytes.count)
    }

    /// Hands a full buffer to the helpers; returns the next one to fill.
    private func flushBuffer(_ full: UploadBuffer) throws -> UploadBuffer {
        if background == nil { background = BackgroundWriter(descriptor: descriptor, hasher: hasher) }
        buffer = nil  // the writer's now, even if the hand-over fails
        try background!.submit(full)
        let next = try background!.takeBuffer()
        buffer = next
        return next
    }

    /// Flushes the bytes to disk and returns their address. After this the
    /// file belongs to the ``CompletedBlob``.
    public func finish() throws -> CompletedBlob {
        guard let last = buffer else { throw StorageError(.invalid, "blob writer already finished") }
        buffer = nil
        let hashing = background
        if let background {
            if !last.isEmpty { try background.submit(last) } else { UploadBuffers.shared.giveBack(last) }
            try background.drainWrites()
            self.background = nil
        } else {
            defer { UploadBuffers.shared.giveBack(last) }
            try hasher.update(last.bytes)
            try Self.writeAll(descriptor, last.bytes)
        }
        if fsync(descriptor) != 0 { throw StorageError.fromErrno("fsync temporary file") }
        if close(descriptor) != 0 { descriptor = -1; throw StorageError.fromErrno("close temporary file") }
        descriptor = -1
        // The last megabytes were hashed while the fsync waited.
        try hashing?.finishHashing()
        let digest = Hex.encode(try hasher.finalize())
        done = true
        return CompletedBlob(temporaryPath: temporaryPath, sha256: digest, size: size)
    }

    /// Deletes the temporary file; nothing of this upload remains.
    public func abandon() {
        done = true
        background?.cancel()
        background = nil
        if let buffer { UploadBuffers.shared.giveBack(buffer) }
        buffer = nil
        if descriptor >= 0 { close(descriptor); descriptor = -1 }
        unlink(temporaryPath)
    }

    static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw StorageError.fromErrno("write temporary file")
            }
            offset += written
        }
    }
}

/// A complete, fsync'd temporary file with its SHA-256 and size, ready to be
/// placed in the blob store by the transaction that records it.
public struct CompletedBlob: Sendable {
    public let temporaryPath: String
    public let sha256: String
    public let size: Int64
    /// Placed with a hard link, leaving `temporaryPath` to its owner: a
    /// finished session file stays where it is until the upload is recorded,
    /// so a failure or crash in between loses no acknowledged chunk.
    var placedByLink = false

    public init(temporaryPath: String, sha256: String, size: Int64) {
        self.temporaryPath = temporaryPath
        self.sha256 = sha256
        self.size = size
    }

    init(linking path: String, sha256: String, size: Int64) {
        self.init(temporaryPath: path, sha256: sha256, size: size)
        placedByLink = true
    }

    /// Deletes the file if it was never placed (the transaction failed, or
    /// the blob existed already). A linked file is left to its owner.
    public func discard() {
        if !placedByLink { FileSystem.remove(temporaryPath) }
    }

    /// Deletes the file on a background thread: unlinking hundreds of
    /// megabytes takes a noticeable time the request shouldn't wait for. A
    /// crash before it runs leaves a temporary file the sweep removes.
    func discardInBackground() {
        guard !placedByLink else { return }
        let path = temporaryPath
        Thread.detachNewThread { FileSystem.remove(path) }
    }
}
