import Foundation
import Glibc

/// nginx's index of the public tree: map files that give, per linked id, the
/// headers the route answers with (written by `Routes/PublicIndex`). They
/// live in `public/nginx/index-<n>/`, and `public/nginx/current` points at
/// the complete one, so nginx (re)loading its configuration reads one whole
/// index or the previous one, never a mix or a half-written file.
/// `public/nginx/stamp` says what the current index reflects; whoever
/// reloads nginx watches it.
extension PublicTree {
    public var indexFolder: String { directory.publicPath + "/nginx" }
    public var currentIndexPath: String { indexFolder + "/current" }
    public var indexStampPath: String { indexFolder + "/stamp" }

    /// What the installed index reflects, as given to ``installIndex(_:stamp:)``.
    public func installedIndexStamp() -> String? {
        guard FileSystem.isDirectory(currentIndexPath) || FileSystem.exists(currentIndexPath),
              let text = try? String(contentsOfFile: indexStampPath, encoding: .utf8) else { return nil }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs `body` holding the lock that lets one process at a time rebuild the index.
    public func withIndexLock<T>(_ body: () throws -> T) throws -> T {
        try directory.withExclusiveLock("public/nginx/.lock", body)
    }

    /// Installs `files` (name → contents, names without `/`) as the current
    /// index, synced before it becomes current, then records `stamp`.
    /// Older indexes but the previous one are removed (nginx may be reading it).
    public func installIndex(_ files: [String: String], stamp: String) throws {
        let serial = (FileSystem.list(indexFolder).compactMap(Self.indexSerial).max() ?? 0) + 1
        let name = "index-\(serial)"
        let folder = indexFolder + "/" + name
        try FileSystem.makeDirectory(folder, mode: 0o755)
        for (file, contents) in files {
            precondition(!file.contains("/") && !file.hasPrefix("."), "index file names are plain: \(file)")
            try FileSystem.writeDurably(folder + "/" + file, Array(contents.utf8), mode: 0o644)
        }
        try FileSystem.syncDirectory(folder)
        let link = indexFolder + "/.current.new"
        unlink(link)
        guard symlink(name, link) == 0 else { throw StorageError.fromErrno("symlink \(link)") }
        guard rename(link, currentIndexPath) == 0 else { throw StorageError.fromErrno("rename \(link)") }
        let stampFile = indexFolder + "/.stamp.new"
        try FileSystem.writeDurably(stampFile, Array((stamp + "\n").utf8), mode: 0o644)
        guard rename(stampFile, indexStampPath) == 0 else { throw StorageError.fromErrno("rename \(stampFile)") }
        try FileSystem.syncDirectory(indexFolder)
        for old in FileSystem.list(indexFolder) {
            if let oldSerial = Self.indexSerial(old), oldSerial < serial - 1 { FileSystem.removeTree(indexFolder + "/" + old) }
        }
    }

    private static func indexSerial(_ name: String) -> Int? {
        name.hasPrefix("index-") ? Int(name.dropFirst("index-".count)) : nil
    }
}
