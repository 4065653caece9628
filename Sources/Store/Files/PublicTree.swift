import Glibc

/// Hard links to the blobs of public files, for nginx to serve without a
/// worker: `public/cache/<upload id>.<type key>` for published uploads (the
/// minihost cache URLs) and `public/links/<public id>.<type key>` for
/// uploads with a public link (the plain dialect's `/s/` and `/d/`). The
/// type key names the upload's stored Content-Type, so nginx gives the file
/// its type the way it types any static file, by extension (a `types` block
/// in nginx's index, `Routes/PublicIndex`). nginx answers from here when the
/// index also has the file's headers, and asks a worker otherwise.
///
/// A link is the permission: it is made after the row that publishes the
/// file commits, and removed (and the removal synced) inside the transaction
/// that unpublishes or purges it, before the commit. nginx keeps the files it
/// opens here for at most ``nginxOpenFileValidity`` before it looks again
/// (`open_file_cache_valid`: opening the file on every hit costs a third of
/// nginx's rate), so whoever removed a link waits out ``unlinkGrace`` after
/// the commit before acknowledging: an acknowledged unpublish is never served
/// from here again, not even after a power loss. A crash in between leaves a
/// link missing (the worker serves the file) or one too many for an
/// unpublish that was never acknowledged; ``MinihostStore/reconcilePublicTree()``
/// puts the tree right at start and in gc.
///
/// Only files whose answer has no per-request condition are linked: an
/// upload with an expiry, a download limit or a password is always served
/// by a worker, so those conditions take effect at once.
public struct PublicTree: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        /// Published uploads, by upload id.
        case cache
        /// Uploads with a public link, by public id.
        case links
    }

    /// One link's name: `<id>.<type key>`.
    public struct Link: Sendable, Hashable {
        public let id: String
        public let typeKey: String
        public var name: String { id + "." + typeKey }

        /// The link for the file `id` whose stored Content-Type is `contentType`.
        public init(id: String, contentType: String) {
            self.id = id
            typeKey = Self.typeKey(contentType)
        }

        init?(name: String) {
            guard let dot = name.lastIndex(of: "."), case let id = String(name[..<dot]), PublicTree.isSafeName(id) else { return nil }
            self.id = id
            typeKey = String(name[name.index(after: dot)...])
            guard typeKey.utf8.count == 17, typeKey.hasPrefix("t") else { return nil }
        }

        /// `t` and 16 hex digits naming a stored Content-Type.
        public static func typeKey(_ contentType: String) -> String { "t" + StableHash.hex(contentType) }
    }

    /// How long nginx trusts a file it opened from the tree before it looks
    /// at the name again (its `open_file_cache_valid`, in whole seconds).
    public static let nginxOpenFileValidity = 1

    /// How long after removing a link nginx may still serve it: the validity,
    /// plus nginx's clock, which lags while a worker works through a batch
    /// of events.
    public static let unlinkGrace: Duration = .seconds(nginxOpenFileValidity) + .milliseconds(250)

    let directory: DataDirectory

    public init(directory: DataDirectory) {
        self.directory = directory
    }

    public func folder(_ kind: Kind) -> String { directory.publicPath + "/" + kind.rawValue }

    func path(_ kind: Kind, _ link: Link) -> String { folder(kind) + "/" + link.name }

    func create() throws {
        try FileSystem.makeDirectory(directory.publicPath, mode: 0o755)
        for kind in Kind.allCases { try FileSystem.makeDirectory(folder(kind), mode: 0o755) }
        try FileSystem.makeDirectory(indexFolder, mode: 0o755)
    }

    /// Links `blob` as `link`; an existing link is replaced.
    func publish(_ kind: Kind, _ link: Link, blob: String, blobs: BlobStore) {
        guard Self.isSafeName(link.id) else { return }
        let target = path(kind, link)
        unlink(target)
        // Failing only costs speed: without a link the worker serves the file.
        _ = Glibc.link(blobs.path(for: blob), target)
    }

    /// Removes `link`, and syncs the removal before this returns; true if
    /// there was a link (then nginx may serve it for ``unlinkGrace`` more).
    @discardableResult
    func unpublish(_ kind: Kind, _ link: Link) -> Bool {
        guard Self.isSafeName(link.id), unlink(path(kind, link)) == 0 else { return false }
        // A failed sync leaves the removal in the page cache: served as
        // unpublished now, and put right by reconcile after a power loss.
        try? FileSystem.syncDirectory(folder(kind))
        return true
    }

    /// Whether `link` is a link to `blob` (the same file, not only the same name).
    func links(_ kind: Kind, _ link: Link, to blob: String, blobs: BlobStore) -> Bool {
        isLinked(kind, link, to: blobs.path(for: blob))
    }

    /// The links under `kind`.
    public func links(_ kind: Kind) -> [Link] {
        FileSystem.list(folder(kind)).compactMap(Link.init(name:))
    }

    /// What identifies one link: its inode and when that inode last changed
    /// (a re-link changes it), or nil if there is none.
    public func linkStamp(_ kind: Kind, _ link: Link) -> LinkStamp? {
        var info = stat()
        guard stat(path(kind, link), &info) == 0 else { return nil }
        return LinkStamp(inode: UInt64(info.st_ino), changed: Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec))
    }

    public struct LinkStamp: Sendable, Hashable {
        public let inode: UInt64
        public let changed: Int64
    }

    /// Whether `path` is the same file as `link`.
    public func isLinked(_ kind: Kind, _ link: Link, to path: String) -> Bool {
        var linked = stat(), other = stat()
        guard stat(self.path(kind, link), &linked) == 0, stat(path, &other) == 0 else { return false }
        return linked.st_ino == other.st_ino && linked.st_dev == other.st_dev
    }

    /// Ids are ours (hex upload ids, base64url public ids), never user input
    /// that reaches the file system; checked anyway.
    static func isSafeName(_ id: String) -> Bool {
        (1...64).contains(id.utf8.count) && id.utf8.allSatisfy {
            ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 95
        }
    }
}

/// A short hash that is the same in every process and release (Swift's
/// `Hasher` is seeded per process): for names, never for secrets.
public enum StableHash {
    /// FNV-1a, 64 bits, as 16 lowercase hex digits.
    public static func hex(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let digits = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
