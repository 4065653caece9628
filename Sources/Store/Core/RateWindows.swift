import Foundation
import GRDB

/// Fixed-window counters that every worker process shares (they live in the
/// database): "5 logins a minute per address" must hold however many
/// processes serve the requests, and nginx's `limit_req` can't answer in a
/// dialect's format with when to come back. Only for rare, costly requests:
/// each count is a write.
public struct RateWindows: Sendable {
    let db: StoreDatabase

    /// Counts one request under `key` (a route's name and the caller's
    /// address, hashed by the caller). Returns nil when it is allowed, or
    /// when the window ends if `limit` requests already came in it.
    public func take(_ key: String, limit: Int, window: TimeInterval, now: Date = Date()) throws -> Date? {
        let time = now.timeIntervalSince1970
        return try db.write { db in
            if let row = try Row.fetchOne(db, sql: "SELECT window_start, count FROM minihost_rate_windows WHERE key = ?",
                                          arguments: [key]) {
                let start: Double = row["window_start"]
                let count: Int = row["count"]
                if time < start + window {
                    guard count < limit else { return Date(timeIntervalSince1970: start + window) }
                    try db.execute(sql: "UPDATE minihost_rate_windows SET count = count + 1 WHERE key = ?", arguments: [key])
                    return nil
                }
            }
            // Old windows of every key go now and then, so the table stays small.
            if Int.random(in: 0..<64) == 0 {
                try db.execute(sql: "DELETE FROM minihost_rate_windows WHERE window_start < ?", arguments: [time - 3600])
            }
            try db.execute(sql: """
                INSERT INTO minihost_rate_windows (key, window_start, count) VALUES (?, ?, 1)
                ON CONFLICT (key) DO UPDATE SET window_start = excluded.window_start, count = 1
                """, arguments: [key, time])
            return nil
        }
    }
}

extension MinihostStore {
    /// One-time tickets for event streams.
    public var streamTickets: StreamTicketStore { StreamTicketStore(db: db) }
    /// Rate limits shared by every worker process.
    public var rateWindows: RateWindows { RateWindows(db: db) }
    /// Operator settings.
    public var settings: SettingsStore { SettingsStore(db: db) }
}
