import Foundation
import GRDB

/// The store's figures as of one read: what metrics and `minihost status` show.
public struct StoreStatistics: Sendable {
    public var uploads = 0
    public var uploadBytes: Int64 = 0
    public var blobObjects = 0
    public var blobBytes: Int64 = 0
    public var uploadSessionsOpen = 0
    public var maintenance: [MaintenanceTotals] = []
}

/// One maintenance task's running totals (see ``MinihostStore/recordMaintenance(_:_:)``).
public struct MaintenanceTotals: Sendable {
    public enum Task: String, Sendable, CaseIterable {
        /// `minihost gc`, usually from a timer.
        case gc
        /// The workers' sweep of temporary files left by interrupted uploads.
        case sweeper
    }

    public var task: Task
    public var runs: Int64
    public var lastRunAt: Date?
    public var removed: GarbageReport
}

extension MinihostStore {
    /// Counts read in one snapshot. Costs a pass over the uploads table:
    /// fine for a scrape every few seconds, not for a request path.
    public func statistics() throws -> StoreStatistics {
        try read { db in
            var statistics = StoreStatistics()
            if let row = try Row.fetchOne(db, sql: """
                SELECT count(*) AS uploads, coalesce(sum(size), 0) AS bytes FROM minihost_uploads WHERE state = 'ready'
                """) {
                statistics.uploads = row["uploads"]
                statistics.uploadBytes = row["bytes"]
            }
            if let row = try Row.fetchOne(db, sql: """
                SELECT count(*) AS blobs, coalesce(sum(size), 0) AS bytes
                FROM (SELECT max(size) AS size FROM minihost_uploads WHERE blob IS NOT NULL GROUP BY blob)
                """) {
                statistics.blobObjects = row["blobs"]
                statistics.blobBytes = row["bytes"]
            }
            statistics.uploadSessionsOpen = try Int.fetchOne(
                db, sql: "SELECT count(*) FROM minihost_upload_sessions WHERE state = 'open'") ?? 0
            statistics.maintenance = try Row.fetchAll(db, sql: "SELECT * FROM minihost_maintenance ORDER BY task").compactMap { row in
                guard let task = MaintenanceTotals.Task(rawValue: row["task"]) else { return nil }
                return MaintenanceTotals(
                    task: task, runs: row["runs"], lastRunAt: row["last_run_at"],
                    removed: GarbageReport(temporaryFilesRemoved: row["temporary_files_removed"],
                                           sessionsExpired: row["sessions_expired"], blobsRemoved: row["blobs_removed"],
                                           bytesFreed: row["bytes_freed"], publicLinksRepaired: row["public_links_repaired"],
                                           uploadsEnded: row["uploads_ended"]))
            }
            return statistics
        }
    }

    /// Adds one run of `task` and what it removed to the running totals.
    public func recordMaintenance(_ task: MaintenanceTotals.Task, _ report: GarbageReport, at now: Date = Date()) throws {
        try write { db in
            try db.execute(sql: """
                UPDATE minihost_maintenance SET runs = runs + 1, last_run_at = ?,
                    temporary_files_removed = temporary_files_removed + ?, sessions_expired = sessions_expired + ?,
                    blobs_removed = blobs_removed + ?, bytes_freed = bytes_freed + ?,
                    public_links_repaired = public_links_repaired + ?, uploads_ended = uploads_ended + ?
                WHERE task = ?
                """, arguments: [now, report.temporaryFilesRemoved, report.sessionsExpired, report.blobsRemoved,
                                 report.bytesFreed, report.publicLinksRepaired, report.uploadsEnded, task.rawValue])
        }
    }

    /// Times a statement waited for another connection's lock, since this store opened.
    public var busyRetries: Int64 { db.busyRetries.count.load(ordering: .relaxed) }
}
