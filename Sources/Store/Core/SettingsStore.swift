import Foundation
import GRDB

/// Operator settings kept across restarts (`minihost_settings`): small
/// named values, as JSON text.
public struct SettingsStore: Sendable {
    let db: StoreDatabase

    public func value(_ name: String) throws -> String? {
        try db.read { try String.fetchOne($0, sql: "SELECT value FROM minihost_settings WHERE name = ?", arguments: [name]) }
    }

    public func set(_ name: String, to value: String, now: Date = Date()) throws {
        try db.write { db in
            try db.execute(sql: """
                INSERT INTO minihost_settings (name, value, updated_at) VALUES (?, ?, ?)
                ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                """, arguments: [name, value, now])
        }
    }
}
