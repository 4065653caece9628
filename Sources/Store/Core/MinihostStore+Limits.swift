import Foundation
import GRDB

/// What claiming one download of an upload found.
public enum DownloadClaim: Sendable, Equatable {
    /// Counted; the upload as it is after this download.
    case granted(Upload)
    /// Past its expiry.
    case expired
    /// Every allowed download was already taken.
    case exhausted
    /// No ready upload with that id.
    case notFound
}

extension Upload {
    /// Past its expiry at `now`.
    public func isExpired(at now: Date) -> Bool { expiresAt.map { $0 <= now } ?? false }
    /// Every allowed download taken.
    public var isExhausted: Bool { maxDownloads.map { downloadCount >= $0 } ?? false }
    /// Ended: never served again, whatever the sweeper has done yet.
    public func hasEnded(at now: Date) -> Bool { isExhausted || isExpired(at: now) }
}

/// Expiry and download limits, the same for every dialect. An upload ends
/// the moment its expiry passes or its last allowed download is claimed;
/// every route that serves one asks at answer time (so a sweeper that hasn't
/// run yet changes nothing), and uploads with either condition are never
/// linked in the public tree, so nginx can't serve them alone.
extension MinihostStore {
    /// How long an ended upload keeps its bytes before the sweeper purges it:
    /// the last granted download is answered by nginx after the claim, from
    /// the blob, so the blob must outlive the claim a little.
    public static let endedGrace: TimeInterval = 60

    /// Counts one download, atomically across threads and processes: of any
    /// number of concurrent claims on an upload with k downloads left,
    /// exactly k are granted. The claim that takes the last one also sets
    /// the expiry to now, which is what the sweeper looks for.
    public func claimDownload(uploadId: String, now: Date = Date()) throws -> DownloadClaim {
        try writeImmediately { db in
            guard var upload = try Upload.fetchOne(db, key: uploadId), upload.state == .ready else { return .notFound }
            if upload.isExhausted { return .exhausted }
            if upload.isExpired(at: now) { return .expired }
            upload.downloadCount += 1
            if upload.isExhausted { upload.expiresAt = min(upload.expiresAt ?? now, now) }
            try db.execute(sql: "UPDATE minihost_uploads SET download_count = ?, expires_at = ? WHERE id = ?",
                           arguments: [upload.downloadCount, upload.expiresAt, upload.id])
            return .granted(upload)
        }
    }

    /// Purges up to `limit` ready uploads that ended more than
    /// ``endedGrace`` ago (their blobs go when nothing else references
    /// them), and deletes up to `limit` skysend notes that ended. Returns how
    /// many of both. The sweeper and gc call it.
    @discardableResult
    public func purgeEnded(now: Date = Date(), limit: Int = 1000) throws -> Int {
        let cutoff = now.addingTimeInterval(-Self.endedGrace)
        let notes = try skysendNotes.deleteEnded(now: now, limit: limit)
        return notes + (try writeReleasingBlobs { db, released in
            let ended = try Upload.fetchAll(db, sql: """
                SELECT * FROM minihost_uploads WHERE expires_at IS NOT NULL AND expires_at < ? AND state = 'ready' LIMIT ?
                """, arguments: [cutoff, limit])
            for upload in ended { try purgeRow(upload, now: now, db, into: &released) }
            return ended.count
        })
    }
}
