import Foundation
import GRDB
import OpenSSLCrypto

extension Owner.Kind {
    /// An s4 bucket: its objects' uploads are owned by the bucket's name.
    public static let s4Bucket = Owner.Kind(rawValue: "s4_bucket")
}

/// A bucket as the s4 dialect lists it.
public struct S4Bucket: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Made with `POST /api/buckets`: objects can be written and deleted.
        case s4
        /// A minihost API client's uploads, browsed read-only.
        case apiClient(clientKey: String)
    }

    public var name: String
    public var createdAt: Date
    public var kind: Kind

    public var isReadOnly: Bool { kind != .s4 }
}

/// An object's listing entry (`minihost_s4_objects`, or an API client's upload).
public struct S4Object: Sendable, Equatable {
    public var key: String
    public var size: Int64
    /// The SHA-256 of the bytes, hex (S3 would use MD5; nothing here computes one).
    public var etag: String
    public var lastModified: Date
    public var uploadId: String
    /// `x-amz-meta-*` values the upload came with, as a JSON object.
    public var metadata: String?

    public init(key: String, size: Int64, etag: String, lastModified: Date, uploadId: String, metadata: String?) {
        self.key = key
        self.size = size
        self.etag = etag
        self.lastModified = lastModified
        self.uploadId = uploadId
        self.metadata = metadata
    }
}

/// The s4 dialect's buckets and objects. Each object is a core upload owned
/// by its bucket (``Owner/Kind/s4Bucket``), so blobs, durability and gc are
/// the core's; the side table maps `(bucket, key)` to the upload and keeps
/// what a listing shows, so a page is one walk of its primary key.
///
/// Each minihost API client also appears as a read-only bucket named
/// ``appBucketPrefix`` + its key, whose objects are its ready uploads keyed
/// `<upload id>/<file name>`.
public struct S4Store: Sendable {
    let store: MinihostStore

    /// Can't begin an S3 bucket name (`:` is outside S3's alphabet), so no
    /// bucket an operator makes can take an API client's name.
    public static let appBucketPrefix = "app:"
    /// What a key may be, as S3 allows: 1 to 1024 bytes of UTF-8, no NUL.
    public static let maxKeyBytes = 1024

    /// Every bucket: the s4 ones by name, then one per API client.
    public func buckets() throws -> [S4Bucket] {
        try store.read { db in
            let own = try Row.fetchAll(db, sql: "SELECT name, created_at FROM minihost_s4_buckets ORDER BY name").map {
                S4Bucket(name: $0["name"], createdAt: $0["created_at"], kind: .s4)
            }
            let apps = try APIClient.order(Column("client_key")).fetchAll(db).map {
                S4Bucket(name: Self.appBucketPrefix + $0.clientKey, createdAt: $0.createdAt, kind: .apiClient(clientKey: $0.clientKey))
            }
            return own + apps
        }
    }

    /// The bucket called `name`, or nil.
    public func bucket(_ name: String) throws -> S4Bucket? {
        try store.read { db in try Self.bucket(name, db) }
    }

    static func bucket(_ name: String, _ db: Database) throws -> S4Bucket? {
        if name.hasPrefix(appBucketPrefix) {
            let key = String(name.dropFirst(appBucketPrefix.count))
            return try APIClient.fetchOne(db, key: key).map {
                S4Bucket(name: name, createdAt: $0.createdAt, kind: .apiClient(clientKey: $0.clientKey))
            }
        }
        return try Row.fetchOne(db, sql: "SELECT name, created_at FROM minihost_s4_buckets WHERE name = ?", arguments: [name])
            .map { S4Bucket(name: $0["name"], createdAt: $0["created_at"], kind: .s4) }
    }

    /// Makes a bucket; `conflict` if one has the name. The name must already
    /// be checked against S3's rules (the dialect's words for each).
    public func createBucket(_ name: String, now: Date = Date()) throws {
        try store.write { db in
            guard try Self.bucket(name, db) == nil else { throw StorageError(.conflict, "bucket \(name) already exists") }
            try db.execute(sql: "INSERT INTO minihost_s4_buckets (name, created_at) VALUES (?, ?)", arguments: [name, now])
        }
    }

    public enum DeleteBucketOutcome: Sendable {
        case deleted, notFound, notEmpty, readOnly
    }

    public func deleteBucket(_ name: String) throws -> DeleteBucketOutcome {
        try store.write { db in
            guard let bucket = try Self.bucket(name, db) else { return .notFound }
            guard !bucket.isReadOnly else { return .readOnly }
            let hasObjects = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM minihost_s4_objects WHERE bucket = ?)",
                                               arguments: [name]) ?? false
            guard !hasObjects else { return .notEmpty }
            try db.execute(sql: "DELETE FROM minihost_s4_buckets WHERE name = ?", arguments: [name])
            return .deleted
        }
    }

    /// The object at `key` with its upload (for the type and the blob), or nil.
    public func object(bucket: S4Bucket, key: String) throws -> (object: S4Object, upload: Upload)? {
        try store.read { db in
            switch bucket.kind {
            case .s4:
                guard let row = try Row.fetchOne(db, sql: """
                    SELECT o.key, o.size, o.etag, o.last_modified_ms, o.upload_id, o.metadata, u.*
                    FROM minihost_s4_objects o JOIN minihost_uploads u ON u.id = o.upload_id
                    WHERE o.bucket = ? AND o.key = ? AND u.state = 'ready'
                    """, arguments: [bucket.name, key]) else { return nil }
                return (Self.object(row), try Upload(row: row))
            case .apiClient(let clientKey):
                guard let slash = key.utf8.firstIndex(of: UInt8(ascii: "/")) else { return nil }
                let id = String(key[..<slash])
                guard let upload = try store.upload(id: id, owner: .apiClient(clientKey), db), upload.state == .ready,
                      Self.appKey(upload) == key else { return nil }
                return (Self.appObject(upload), upload)
            }
        }
    }

    /// Stores `file` at `key`, replacing what was there in the same
    /// transaction: a reader finds the old object or the new one, never
    /// neither or a mix. The replaced bytes stay readable to downloads
    /// already answered and are released a moment later (or by gc).
    public func put(_ file: CompletedBlob, bucket: String, key: String, contentType: String, metadata: String?,
                    now: Date = Date()) throws -> S4Object {
        var replaced: Upload?
        let fileName = DisplayName.sanitize(key.split(separator: "/").last.map(String.init) ?? key)
        let upload = try store.commitUpload(file, owner: Owner(kind: .s4Bucket, id: bucket), fileName: fileName,
                                            contentType: contentType, now: now, configure: { _ in }) { db, upload in
            guard let found = try Self.bucket(bucket, db), !found.isReadOnly else {
                throw StorageError(.notFound, "bucket \(bucket) not found")
            }
            if let oldId = try String.fetchOne(db, sql: "SELECT upload_id FROM minihost_s4_objects WHERE bucket = ? AND key = ?",
                                               arguments: [bucket, key]) {
                replaced = try Upload.fetchOne(db, key: oldId)
            }
            try db.execute(sql: """
                INSERT INTO minihost_s4_objects (bucket, key, upload_id, size, etag, last_modified_ms, metadata)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (bucket, key) DO UPDATE SET upload_id = excluded.upload_id, size = excluded.size,
                    etag = excluded.etag, last_modified_ms = excluded.last_modified_ms, metadata = excluded.metadata
                """, arguments: [bucket, key, upload.id, upload.size, upload.sha256, Self.milliseconds(now), metadata])
            if let old = replaced {
                var released = MinihostStore.Released()
                try store.purgeRow(old, now: now, db, into: &released)
            }
        }
        if let replaced, let blob = replaced.blob, blob != upload.sha256 { releaseLater([blob]) }
        return S4Object(key: key, size: upload.size, etag: upload.sha256, lastModified: now, uploadId: upload.id,
                        metadata: metadata)
    }

    /// Deletes every object whose key starts with `prefix` (the key itself
    /// included), in batches so a large prefix never holds the write lock
    /// long. Returns how many went.
    public func delete(bucket: String, prefix: String, now: Date = Date()) throws -> Int {
        var count = 0
        while true {
            let batch = try store.writeReleasingBlobs { db, released -> Int in
                let rows = try Row.fetchAll(db, sql: """
                    SELECT o.key, u.* FROM minihost_s4_objects o JOIN minihost_uploads u ON u.id = o.upload_id
                    WHERE o.bucket = ? AND o.key >= ? ORDER BY o.key LIMIT 500
                    """, arguments: [bucket, prefix])
                var deleted = 0
                for row in rows {
                    let key: String = row["key"]
                    guard key.utf8.starts(with: prefix.utf8) else { break }
                    try db.execute(sql: "DELETE FROM minihost_s4_objects WHERE bucket = ? AND key = ?", arguments: [bucket, key])
                    try store.purgeRow(try Upload(row: row), now: now, db, into: &released)
                    deleted += 1
                }
                return deleted
            }
            count += batch
            if batch < 500 { return count }
        }
    }

    /// Unlinks blobs a replace stopped referencing, after long enough for a
    /// download answered just before the replace to have opened its file.
    private func releaseLater(_ blobs: Set<String>) {
        let store = self.store
        DispatchQueue.global().asyncAfter(deadline: .now() + 2) {
            _ = try? store.writeReleasingBlobs { _, released in released.blobs = blobs }
        }
    }

    /// The columns ``object(_:)-(ColumnValues)`` reads, in its order.
    static let objectSelection = "key, size, etag, last_modified_ms, upload_id, metadata"

    /// From a row whose first columns are ``objectSelection``. Listings
    /// decode by position from the statement: GRDB's `Row` copies and its
    /// date parsing were most of a page's time.
    static func object(_ row: Row) -> S4Object {
        S4Object(key: row[0], size: row[1], etag: row[2], lastModified: date(milliseconds: row[3]), uploadId: row[4],
                 metadata: row[5])
    }

    static func object(_ c: ColumnValues) throws -> S4Object {
        S4Object(key: try c.required(0), size: try c.required(1), etag: try c.required(2),
                 lastModified: date(milliseconds: try c.required(3)), uploadId: try c.required(4), metadata: c.optional(5))
    }

    /// Times in the side table are whole milliseconds since 1970.
    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded(.down)) }
    static func date(milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }

    static func appKey(_ upload: Upload) -> String { upload.id + "/" + upload.fileName }

    static func appObject(_ upload: Upload) -> S4Object {
        S4Object(key: appKey(upload), size: upload.size, etag: upload.sha256,
                 lastModified: upload.finishedAt ?? upload.createdAt, uploadId: upload.id, metadata: nil)
    }
}

extension MinihostStore {
    /// The s4 dialect's buckets and objects.
    public var s4: S4Store { S4Store(store: self) }

    func upload(id: String, owner: Owner, _ db: Database) throws -> Upload? {
        try Upload.filter(Column("id") == id && Column("owner_kind") == owner.kind.rawValue && Column("owner_id") == owner.id)
            .fetchOne(db)
    }
}
