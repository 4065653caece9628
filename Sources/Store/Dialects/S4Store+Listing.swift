import Foundation
import GRDB

/// One page of a listing: objects and common prefixes in key order, as S3's
/// `ListObjectsV2` with delimiter `/` gives them.
public struct S4Listing: Sendable {
    public var objects: [S4Object] = []
    public var prefixes: [String] = []
    /// Where the next page starts (opaque to clients), when there is one.
    public var nextToken: String?
    public var isTruncated: Bool { nextToken != nil }

    public init() {}
}

/// Where a listing resumes: past an object's key, or past every key under a
/// common prefix. Tokens are this, base64url-encoded by the caller.
public struct S4ListingCursor: Sendable, Equatable {
    public enum Kind: String, Sendable { case object = "o", prefix = "p" }
    public var kind: Kind
    public var value: String

    public init(kind: Kind, value: String) {
        self.kind = kind
        self.value = value
    }

    /// `o:<key>` or `p:<prefix>`.
    public var encoded: String { kind.rawValue + ":" + value }

    public init?(encoded: String) {
        guard encoded.utf8.count >= 2, let kind = Kind(rawValue: String(encoded.prefix(1))),
              encoded.dropFirst().hasPrefix(":") else { return nil }
        self.init(kind: kind, value: String(encoded.dropFirst(2)))
    }
}

extension S4Store {
    /// A page of keys under `prefix`, in byte order. With `delimiter`, keys
    /// with a `/` after the prefix are rolled up into one common prefix each.
    ///
    /// Keyset pagination on the `(bucket, key)` primary key: a page costs
    /// one index seek per common prefix plus one per batch of objects,
    /// however many keys come before it.
    public func list(_ bucket: S4Bucket, prefix: String, delimiter: Bool, after cursor: S4ListingCursor?,
                     maxKeys: Int) throws -> S4Listing {
        precondition(maxKeys > 0)
        return try store.read { db in
            var listing = S4Listing()
            var seek = Seek(value: prefix, inclusive: true)
            if let cursor {
                let resume = cursor.kind == .object ? Seek(value: cursor.value, inclusive: false)
                    : Seek(value: Self.successor(ofPrefix: cursor.value), inclusive: true)
                // A token from another prefix can't move the listing before its own.
                if !resume.value.utf8.lexicographicallyPrecedes(prefix.utf8) { seek = resume }
            }
            var count = 0
            var last: S4ListingCursor?
            // Small batches after a common prefix (the next key is likely
            // under another one), growing while keys come one after another.
            var batchSize = 4
            scanning: while true {
                let limit = min(maxKeys - count + 1, batchSize)
                let batch = try rows(bucket, from: seek, limit: limit, db)
                for object in batch {
                    guard object.key.utf8.starts(with: prefix.utf8) else { break scanning }
                    let rest = object.key.utf8.dropFirst(prefix.utf8.count)
                    if delimiter, let slash = rest.firstIndex(of: UInt8(ascii: "/")) {
                        let common = String(decoding: object.key.utf8[..<object.key.utf8.index(after: slash)], as: UTF8.self)
                        if count == maxKeys {
                            listing.nextToken = last?.encoded
                            break scanning
                        }
                        listing.prefixes.append(common)
                        count += 1
                        last = S4ListingCursor(kind: .prefix, value: common)
                        seek = Seek(value: Self.successor(ofPrefix: common), inclusive: true)
                        batchSize = 1
                        continue scanning
                    }
                    if count == maxKeys {
                        listing.nextToken = last?.encoded
                        break scanning
                    }
                    listing.objects.append(object)
                    count += 1
                    last = S4ListingCursor(kind: .object, value: object.key)
                    seek = Seek(value: object.key, inclusive: false)
                }
                if batch.count < limit { break }
                batchSize = min(batchSize * 4, 1000)
            }
            return listing
        }
    }

    /// Objects under `prefix` whose key after it contains `text` (ASCII
    /// letters compared without case), up to `maxKeys`, resuming after
    /// `cursor`. A scan of the prefix's keys: callers rate-limit it.
    public func search(_ bucket: S4Bucket, prefix: String, containing text: String, after cursor: S4ListingCursor?,
                       maxKeys: Int) throws -> S4Listing {
        try store.read { db in
            var listing = S4Listing()
            let start = cursor.map { $0.value } ?? prefix
            let inclusive = cursor == nil
            let skip = prefix.unicodeScalars.count + 1
            var objects: [S4Object]
            switch bucket.kind {
            case .s4:
                objects = try db.cachedStatement(sql: """
                    SELECT \(Self.objectSelection) FROM minihost_s4_objects
                    WHERE bucket = ? AND \(inclusive ? "key >= ?" : "key > ?")
                      AND instr(lower(substr(key, ?)), lower(?)) > 0
                    ORDER BY key LIMIT ?
                    """).fetchEach(arguments: [bucket.name, start, skip, text, maxKeys + 1], Self.object)
                objects = Array(objects.prefix { $0.key.utf8.starts(with: prefix.utf8) })
            case .apiClient(let clientKey):
                // The same scan over the keys `<id>/<file name>` the uploads table makes up.
                let idStart = String(decoding: start.utf8.prefix(32), as: UTF8.self)
                objects = try Upload.fetchAll(db.cachedStatement(sql: """
                    SELECT \(Upload.selection) FROM minihost_uploads
                    WHERE owner_kind = 'api_client' AND owner_id = ? AND state = 'ready' AND id >= ?
                      AND instr(lower(substr(id || '/' || file_name, ?)), lower(?)) > 0
                    ORDER BY id LIMIT ?
                    """), arguments: [clientKey, idStart, skip, text, maxKeys + 2]).map(Self.appObject).filter {
                    $0.key.utf8.starts(with: prefix.utf8) && (inclusive || !$0.key.utf8.elementsEqual(start.utf8))
                        && !$0.key.utf8.lexicographicallyPrecedes(start.utf8)
                }
                objects = Array(objects.prefix(maxKeys + 1))
            }
            if objects.count > maxKeys {
                objects.removeLast()
                listing.nextToken = objects.last.map { S4ListingCursor(kind: .object, value: $0.key).encoded }
            }
            listing.objects = objects
            return listing
        }
    }

    /// Where a scan starts: at `value`, or just past it.
    struct Seek {
        var value: String
        var inclusive: Bool
    }

    /// The first string after every string that starts with `prefix`, which
    /// ends in `/`: the same with `0`, the next byte, in its place.
    static func successor(ofPrefix prefix: String) -> String {
        guard prefix.hasSuffix("/") else { return prefix + "\u{10FFFF}" }
        return String(prefix.dropLast()) + "0"
    }

    private func rows(_ bucket: S4Bucket, from seek: Seek, limit: Int, _ db: Database) throws -> [S4Object] {
        switch bucket.kind {
        case .s4:
            let comparison = seek.inclusive ? ">=" : ">"
            return try db.cachedStatement(sql: """
                SELECT \(Self.objectSelection) FROM minihost_s4_objects
                WHERE bucket = ? AND key \(comparison) ? ORDER BY key LIMIT ?
                """).fetchEach(arguments: [bucket.name, seek.value, limit], Self.object)
        case .apiClient(let clientKey):
            return try appRows(clientKey, from: seek, limit: limit, db)
        }
    }

    /// An API client's ready uploads as objects keyed `<id>/<file name>`.
    /// Ids are fixed-length hex, so key order is id order: the scan seeks
    /// on the id the seek value starts with and drops what falls before it.
    private func appRows(_ clientKey: String, from seek: Seek, limit: Int, _ db: Database) throws -> [S4Object] {
        let idStart = String(decoding: seek.value.utf8.prefix(32), as: UTF8.self)
        var result: [S4Object] = []
        var from = idStart
        var fromInclusive = true
        while result.count < limit {
            let batch = try Upload.fetchAll(db.cachedStatement(sql: """
                SELECT \(Upload.selection) FROM minihost_uploads
                WHERE owner_kind = 'api_client' AND owner_id = ? AND state = 'ready' AND id \(fromInclusive ? ">=" : ">") ?
                ORDER BY id LIMIT ?
                """), arguments: [clientKey, from, min(limit, 1000)])
            for upload in batch {
                let object = Self.appObject(upload)
                let after = object.key.utf8.lexicographicallyPrecedes(seek.value.utf8) == false
                    && (seek.inclusive || !object.key.utf8.elementsEqual(seek.value.utf8))
                if after { result.append(object) }
                if result.count == limit { break }
            }
            guard batch.count == min(limit, 1000), let lastId = batch.last?.id else { break }
            from = lastId
            fromInclusive = false
        }
        return result
    }
}
