import Foundation
import Glibc
import OpenSSLCrypto

/// A directory an operator exposes (s4's local storage locations), and
/// every file operation beneath it. No operation can leave the root: a path
/// is walked one component at a time with `openat(…, O_NOFOLLOW)` from a
/// descriptor of the root, so `..`, absolute paths and symlinks anywhere on
/// the way are refused, and a symlink swapped in mid-request is refused by
/// the very call that would follow it (no check-then-open).
public struct LocalRoot: Sendable {
    public let id: String
    public let path: String

    public init(id: String, path: String) {
        self.id = id
        self.path = path
    }

    /// A file or directory beneath the root.
    public struct Entry: Sendable, Equatable {
        public enum Kind: String, Sendable { case file, directory }
        public var name: String
        /// Relative to the root, components joined with `/`.
        public var path: String
        public var kind: Kind
        public var size: Int64
        public var modified: Date
    }

    /// Components of a relative path: no empty, `.` or `..` component, no
    /// NUL, not absolute. One trailing `/` is allowed (a directory).
    public static func components(_ relative: String) throws -> [String] {
        guard !relative.hasPrefix("/") else { throw StorageError(.invalid, "absolute paths are not allowed") }
        guard !relative.utf8.contains(0) else { throw StorageError(.invalid, "paths can't contain NUL") }
        var text = Substring(relative)
        if text.hasSuffix("/") { text = text.dropLast() }
        if text.isEmpty { return [] }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        for part in parts {
            guard !part.isEmpty, part != ".", part != ".." else {
                throw StorageError(.invalid, "paths can't contain empty, . or .. components")
            }
            guard part.utf8.count <= 255 else { throw StorageError(.invalid, "a path component is longer than 255 bytes") }
        }
        return parts
    }

    /// Lists a directory: its files and directories by name (symlinks and
    /// special files are left out, as nothing here follows or serves them).
    public func list(_ components: [String]) throws -> [Entry] {
        let directory = try openDirectory(components[...], create: false)
        defer { close(directory) }
        let base = components.joined(separator: "/")
        let entries = try Self.names(in: directory).compactMap { try? describe($0, in: directory, base: base) }
        return entries.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
    }

    /// The entry at `components` (never a symlink), or `notFound`.
    public func entry(_ components: [String]) throws -> Entry {
        guard let name = components.last else {
            var info = stat()
            guard stat(path, &info) == 0 else { throw StorageError.fromErrno("stat root") }
            return Entry(name: id, path: "", kind: .directory, size: 0, modified: Self.modified(info))
        }
        let parent = try openDirectory(components.dropLast(), create: false)
        defer { close(parent) }
        guard let entry = try describe(name, in: parent, base: components.dropLast().joined(separator: "/")) else {
            throw StorageError(.outOfScope, "not a file or directory")
        }
        return entry
    }

    /// Creates the directory and any missing parents; fine if it exists.
    public func makeDirectory(_ components: [String]) throws {
        guard !components.isEmpty else { throw StorageError(.invalid, "the location's root already exists") }
        close(try openDirectory(components[...], create: true))
    }

    /// Deletes a file, or a directory and everything in it (symlinks inside
    /// are removed, never followed). Returns how many files and directories went.
    public func delete(_ components: [String]) throws -> Int {
        guard let name = components.last else { throw StorageError(.invalid, "the location's root can't be deleted") }
        let parent = try openDirectory(components.dropLast(), create: false)
        defer { close(parent) }
        return try remove(name, in: parent)
    }

    /// Starts writing a file at `components`, creating missing parent
    /// directories. The bytes go to a temporary file beside it, renamed
    /// over the name only by ``LocalFileWriter/finish()``.
    public func makeWriter(_ components: [String]) throws -> LocalFileWriter {
        guard let name = components.last else { throw StorageError(.invalid, "a file needs a name") }
        let parent = try openDirectory(components.dropLast(), create: true)
        do {
            let temporary = ".minihost-upload-" + (try SecureRandom.hex(byteCount: 8))
            let descriptor = openat(parent, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { throw StorageError.fromErrno("create file") }
            return LocalFileWriter(parent: parent, temporaryName: temporary, name: name, descriptor: descriptor)
        } catch {
            close(parent)
            throw error
        }
    }

    /// A descriptor of the directory at `components`, walked without
    /// following any symlink. With `create`, missing directories are made.
    func openDirectory(_ components: ArraySlice<String>, create: Bool) throws -> Int32 {
        var current = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard current >= 0 else { throw StorageError.fromErrno("open location \(id)") }
        for component in components {
            var next = openat(current, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0 && errno == ENOENT && create {
                if mkdirat(current, component, 0o755) != 0 && errno != EEXIST {
                    let error = StorageError.fromErrno("create directory")
                    close(current)
                    throw error
                }
                next = openat(current, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            let failure = errno
            close(current)
            guard next >= 0 else { throw Self.walkError(failure) }
            current = next
        }
        return current
    }

    /// ELOOP and ENOTDIR mean a symlink or a file stood where a directory
    /// was needed: a path that leaves what the location holds.
    static func walkError(_ code: Int32) -> StorageError {
        switch code {
        case ELOOP, ENOTDIR: return StorageError(.outOfScope, "path is not a directory beneath the location")
        default: return StorageError.fromErrno("open directory", code)
        }
    }

    private func describe(_ name: String, in directory: Int32, base: String) throws -> Entry? {
        var info = stat()
        guard fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { throw StorageError.fromErrno("stat") }
        let kind: Entry.Kind
        switch info.st_mode & S_IFMT {
        case S_IFREG: kind = .file
        case S_IFDIR: kind = .directory
        default: return nil
        }
        // Upload leftovers of a crashed request are never shown.
        if name.hasPrefix(".minihost-upload-") { return nil }
        return Entry(name: name, path: base.isEmpty ? name : base + "/" + name, kind: kind,
                     size: kind == .file ? Int64(info.st_size) : 0, modified: Self.modified(info))
    }

    /// The names in a directory (without `.` and `..`), read through a
    /// duplicate of its descriptor, which stays open for the caller.
    private static func names(in directory: Int32) throws -> [String] {
        let duplicate = dup(directory)
        guard duplicate >= 0, let stream = fdopendir(duplicate) else {
            if duplicate >= 0 { close(duplicate) }
            throw StorageError.fromErrno("list directory")
        }
        defer { closedir(stream) }
        var names: [String] = []
        while let item = readdir(stream) {
            let name = withUnsafeBytes(of: item.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    private static func modified(_ info: stat) -> Date {
        Date(timeIntervalSince1970: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
    }

    private func remove(_ name: String, in parent: Int32) throws -> Int {
        if unlinkat(parent, name, 0) == 0 { return 1 }
        guard errno == EISDIR else { throw StorageError.fromErrno("delete") }
        let directory = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directory >= 0 else { throw Self.walkError(errno) }
        var removed = 0
        do {
            defer { close(directory) }
            for child in try Self.names(in: directory) { removed += try remove(child, in: directory) }
        }
        guard unlinkat(parent, name, AT_REMOVEDIR) == 0 else { throw StorageError.fromErrno("delete directory") }
        return removed + 1
    }
}

/// A file being written beneath a ``LocalRoot``: a temporary file in the
/// target's directory, renamed over the target (atomically replacing a
/// file there) once complete and on disk.
public final class LocalFileWriter {
    private let parent: Int32
    private let temporaryName: String
    private let name: String
    private var descriptor: Int32
    public private(set) var size: Int64 = 0

    init(parent: Int32, temporaryName: String, name: String, descriptor: Int32) {
        self.parent = parent
        self.temporaryName = temporaryName
        self.name = name
        self.descriptor = descriptor
    }

    deinit {
        abandon()
        close(parent)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try BlobWriter.writeAll(descriptor, bytes)
        size += Int64(bytes.count)
    }

    /// Syncs the file, renames it over the target and syncs the directory.
    /// A directory at the target's name is a `conflict`.
    public func finish() throws {
        guard fsync(descriptor) == 0 else { throw StorageError.fromErrno("sync file") }
        close(descriptor)
        descriptor = -1
        guard renameat(parent, temporaryName, parent, name) == 0 else {
            let code = errno
            unlinkat(parent, temporaryName, 0)
            if code == EISDIR || code == ENOTEMPTY || code == EEXIST {
                throw StorageError(.conflict, "a directory has that name")
            }
            throw StorageError.fromErrno("rename file", code)
        }
        fsync(parent)
    }

    /// Drops the temporary file (after a failure); nothing at the target changes.
    public func abandon() {
        guard descriptor >= 0 else { return }
        close(descriptor)
        descriptor = -1
        unlinkat(parent, temporaryName, 0)
    }
}
