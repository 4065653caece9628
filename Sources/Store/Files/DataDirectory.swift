import CLinuxShims
import Glibc
import OpenSSLCrypto

/// The layout of a data folder. Everything minihost keeps lives below `root`:
///
///     root/minihost.sqlite     metadata (WAL)
///     root/blobs/aa/bb/<sha>   content-addressed file bytes, served by nginx
///     root/tmp/                uploads in progress; the sweeper removes stale ones
///     root/sessions/<id>/      acknowledged chunks of resumable uploads
///     root/public/             links to public files, and nginx's index of them
///     root/secret.key          the key that signs operator cookies
///     root/credentials.generation  moves when an API client changes (``CredentialGeneration``)
public struct DataDirectory: Sendable {
    public let root: String

    public init(_ root: String) {
        var path = root
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        if !path.hasPrefix("/") {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
            if getcwd(&buffer, buffer.count) != nil {
                let cwd = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                path = path == "." ? cwd : cwd + "/" + (path.hasPrefix("./") ? String(path.dropFirst(2)) : path)
            }
        }
        self.root = path
    }

    public var databasePath: String { root + "/minihost.sqlite" }
    public var blobsPath: String { root + "/blobs" }
    public var temporaryPath: String { root + "/tmp" }
    public var secretKeyPath: String { root + "/secret.key" }
    public var credentialGenerationPath: String { root + "/credentials.generation" }
    /// Chunks of resumable uploads, one folder per session.
    public var sessionsPath: String { root + "/sessions" }
    /// Links to public files and nginx's index of them (see ``PublicTree``).
    public var publicPath: String { root + "/public" }
    /// Progress of uploads in flight, for event streams (see ``UploadProgressBoard``).
    public var progressPath: String { root + "/progress" }

    /// Whether a store was ever opened here.
    public var exists: Bool { FileSystem.exists(databasePath) }

    /// Bytes free for this user on the folder's file system, and its size.
    public func diskSpace() throws -> (free: Int64, total: Int64) {
        var info = statvfs()
        guard statvfs(root, &info) == 0 else { throw StorageError.fromErrno("statvfs \(root)") }
        return (Int64(info.f_bavail) * Int64(info.f_frsize), Int64(info.f_blocks) * Int64(info.f_frsize))
    }

    /// Creates the folders that don't exist yet.
    ///
    /// Permissions follow one rule: nginx's user (in the service's group in
    /// production) may read blobs and nothing else. The root and `blobs/` are
    /// group-traversable; `tmp/`, `sessions/`, the database and the secret
    /// key are the owner's alone. Blob files get 0644 less the umask, so
    /// under systemd's `UMask=0027` they are 0640, readable by the group.
    public func create() throws {
        try FileSystem.makeDirectory(root, mode: 0o750)
        try FileSystem.makeDirectory(blobsPath, mode: 0o755)
        try FileSystem.makeDirectory(temporaryPath, mode: 0o700)
        try FileSystem.makeDirectory(sessionsPath, mode: 0o700)
        try FileSystem.makeDirectory(progressPath, mode: 0o700)
        try PublicTree(directory: self).create()
    }

    /// Runs `body` holding an exclusive `flock` on `root/name` (created
    /// 0600), which other processes on this folder wait for.
    func withExclusiveLock<T>(_ name: String, _ body: () throws -> T) throws -> T {
        let descriptor = open(root + "/" + name, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw StorageError.fromErrno("open \(name)") }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else { throw StorageError.fromErrno("lock \(name)") }
        }
        return try body()
    }

    /// The database and its WAL and shared-memory files, owner-only. SQLite
    /// gives the WAL and -shm files the database file's mode, so creating it
    /// 0600 before SQLite does is enough; older data folders are tightened.
    func createPrivateDatabaseFile() throws {
        let created = open(databasePath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if created >= 0 {
            close(created)
            try FileSystem.syncDirectory(root)
            return
        }
        for path in [databasePath, databasePath + "-wal", databasePath + "-shm"] {
            var info = stat()
            if stat(path, &info) == 0, info.st_uid == geteuid(), info.st_mode & 0o077 != 0 {
                chmod(path, 0o600)
            }
        }
    }
}

/// The few file-system calls the store makes, each turning errno into a ``StorageError``.
enum FileSystem {
    static func makeDirectory(_ path: String, mode: mode_t) throws {
        _ = try makeDirectoryIfMissing(path, mode: mode)
    }

    /// True when this call created the folder (its parent then needs a sync).
    static func makeDirectoryIfMissing(_ path: String, mode: mode_t) throws -> Bool {
        if mkdir(path, mode) == 0 { return true }
        if errno == EEXIST { return false }
        throw StorageError.fromErrno("mkdir \(path)")
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    static func fileSize(_ path: String) -> Int64? {
        var info = stat()
        return stat(path, &info) == 0 ? Int64(info.st_size) : nil
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    static func modificationTime(_ path: String) -> Double? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
    }

    static func remove(_ path: String) {
        unlink(path)
    }

    /// Removes a folder of plain files (a session's chunks) and the folder.
    static func removeTree(_ path: String) {
        for name in list(path) { unlink(path + "/" + name) }
        rmdir(path)
    }

    /// Names in a directory, without `.` and `..`; empty when it can't be read.
    static func list(_ path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Makes a rename or new file in `directory` survive a power cut.
    static func syncDirectory(_ directory: String) throws {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw StorageError.fromErrno("open \(directory)") }
        defer { close(descriptor) }
        if fsync(descriptor) != 0 { throw StorageError.fromErrno("fsync \(directory)") }
    }

    /// Makes everything written to the file system holding `path` durable.
    static func syncFileSystem(containing path: String) throws {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw StorageError.fromErrno("open \(path)") }
        defer { close(descriptor) }
        if minihost_sync_file_system(descriptor) != 0 { throw StorageError.fromErrno("syncfs \(path)") }
    }

    /// Creates or replaces `path` with `bytes`, synced to disk (not its
    /// folder entry: sync the folder after the rename that publishes it).
    static func writeDurably(_ path: String, _ bytes: [UInt8], mode: mode_t) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw StorageError.fromErrno("create \(path)") }
        defer { close(descriptor) }
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw StorageError.fromErrno("write \(path)")
            }
            offset += written
        }
        if fsync(descriptor) != 0 { throw StorageError.fromErrno("fsync \(path)") }
    }

    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}

extension DataDirectory {
    /// The 32-byte key that signs operator cookies, created (mode 0600) on first use.
    public func loadOrCreateSecretKey() throws -> [UInt8] {
        let descriptor = open(secretKeyPath, O_RDONLY | O_CLOEXEC)
        if descriptor >= 0 {
            defer { close(descriptor) }
            var key = [UInt8](repeating: 0, count: 64)
            let count = read(descriptor, &key, key.count)
            guard count >= 32 else { throw StorageError(.io, "\(secretKeyPath) is shorter than 32 bytes") }
            return Array(key.prefix(count))
        }
        let key = try SecureRandom.bytes(32)
        let temporary = secretKeyPath + ".new"
        let output = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw StorageError.fromErrno("create \(temporary)") }
        let written = write(output, key, key.count)
        fsync(output)
        close(output)
        guard written == key.count else { unlink(temporary); throw StorageError.fromErrno("write \(temporary)") }
        // link() fails if another process created the key first; then use theirs.
        if link(temporary, secretKeyPath) != 0 && errno != EEXIST {
            unlink(temporary)
            throw StorageError.fromErrno("install \(secretKeyPath)")
        }
        unlink(temporary)
        return try loadOrCreateSecretKey()
    }
}
