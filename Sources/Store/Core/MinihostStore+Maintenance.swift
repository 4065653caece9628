import Foundation
import GRDB

/// What `minihost gc` did.
public struct GarbageReport: Sendable {
    public var temporaryFilesRemoved: Int
    public var sessionsExpired: Int
    public var blobsRemoved: Int
    public var bytesFreed: Int64
    /// Public links made or removed to match the database (nonzero only
    /// after a crash between a commit and its link).
    public var publicLinksRepaired: Int = 0
    /// Uploads purged because they expired or used up their downloads.
    public var uploadsEnded: Int = 0

    public init(temporaryFilesRemoved: Int = 0, sessionsExpired: Int = 0, blobsRemoved: Int = 0, bytesFreed: Int64 = 0,
                publicLinksRepaired: Int = 0, uploadsEnded: Int = 0) {
        self.temporaryFilesRemoved = temporaryFilesRemoved
        self.sessionsExpired = sessionsExpired
        self.blobsRemoved = blobsRemoved
        self.bytesFreed = bytesFreed
        self.publicLinksRepaired = publicLinksRepaired
        self.uploadsEnded = uploadsEnded
    }
}

/// One problem `minihost check` found.
public struct IntegrityProblem: Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The blob's bytes no longer hash to its name.
        case hashMismatch = "hash mismatch"
        /// A ready upload's blob is not on disk.
        case missingBlob = "missing blob"
        /// The blob's size differs from the size recorded for an upload.
        case sizeMismatch = "size mismatch"
    }

    public var kind: Kind
    public var blob: String
    public var uploadIds: [String]

    public var description: String {
        "\(kind.rawValue): blob \(blob)" + (uploadIds.isEmpty ? "" : " (uploads \(uploadIds.joined(separator: ", ")))")
    }
}

extension MinihostStore {
    /// Removes stale temporary files, expired upload sessions (with their
    /// chunks), uploads that ended (``purgeEnded(now:)``), and every blob no
    /// row references, and puts the public tree
    /// right; the run and what it removed are added to the totals
    /// (``statistics()``).
    /// Runs under the cross-process write lock, so it can't race an upload
    /// that is placing the same blob.
    public func collectGarbage(temporaryFileAge: TimeInterval = 3600) throws -> GarbageReport {
        let temporaryRemoved = blobs.sweepTemporaryFiles(olderThan: temporaryFileAge)
        // Progress records of uploads that ended or stalled an hour ago: no stream waits for them.
        _ = uploadProgress.sweep(olderThan: 3600)
        let sessionsExpired = try expireSessions()
        let ended = try purgeEnded()
        let repaired = try reconcilePublicTree()
        var removed = 0
        var freed: Int64 = 0
        try writeImmediately { db in
            let referenced = Set(try String.fetchAll(db, sql: "SELECT DISTINCT blob FROM minihost_uploads WHERE blob IS NOT NULL"))
            for hash in blobs.allHashes() where !referenced.contains(hash) {
                freed += FileSystem.fileSize(blobs.path(for: hash)) ?? 0
                blobs.remove(hash)
                removed += 1
            }
        }
        let report = GarbageReport(temporaryFilesRemoved: temporaryRemoved, sessionsExpired: sessionsExpired,
                                   blobsRemoved: removed, bytesFreed: freed, publicLinksRepaired: repaired.made + repaired.removed,
                                   uploadsEnded: ended)
        try recordMaintenance(.gc, report)
        return report
    }

    /// Re-hashes every blob on disk and checks every ready upload's blob
    /// exists with the recorded size. `progress` is told each blob checked.
    public func checkIntegrity(progress: (String) -> Void = { _ in }) throws -> [IntegrityProblem] {
        let uploads = try read { db in
            try Upload.filter(Column("blob") != nil).fetchAll(db)
        }
        var uploadsByBlob: [String: [Upload]] = [:]
        for upload in uploads { uploadsByBlob[upload.blob!, default: []].append(upload) }
        var problems: [IntegrityProblem] = []
        let onDisk = Set(blobs.allHashes())
        for hash in onDisk.sorted() {
            progress(hash)
            let ids = uploadsByBlob[hash]?.map(\.id) ?? []
            if blobs.computeHash(of: hash) != hash {
                problems.append(IntegrityProblem(kind: .hashMismatch, blob: hash, uploadIds: ids))
                continue
            }
            let size = FileSystem.fileSize(blobs.path(for: hash))
            let wrongSize = uploadsByBlob[hash]?.filter { $0.size != size } ?? []
            if !wrongSize.isEmpty {
                problems.append(IntegrityProblem(kind: .sizeMismatch, blob: hash, uploadIds: wrongSize.map(\.id)))
            }
        }
        for (hash, rows) in uploadsByBlob where !onDisk.contains(hash) {
            problems.append(IntegrityProblem(kind: .missingBlob, blob: hash, uploadIds: rows.map(\.id)))
        }
        return problems
    }
}
