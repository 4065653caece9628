import Foundation
import GRDB
import Logging
import OpenSSLCrypto

/// SQLite metadata plus the blob store: the one place that decides what is
/// stored. It knows nothing of HTTP; every dialect's routes call into it.
///
/// Safe to share between worker threads: GRDB's `DatabasePool` serialises
/// writes and lets reads run side by side (WAL).
public final class MinihostStore: Sendable {
    public let directory: DataDirectory
    public let blobs: BlobStore
    let database: DatabasePool
    private let readers: ThreadLocalReaders
    /// Coordinates chunks written in place (see ``ChunkWriter``).
    let sessionFiles: SessionFileRegistry

    /// Opens (creating if needed) the data folder and brings the schema up to date.
    public init(directory: DataDirectory) throws {
        self.directory = directory
        try directory.create()
        var configuration = Configuration()
        configuration.busyMode = .timeout(15)
        configuration.label = "minihost"
        database = try DatabasePool(path: directory.databasePath, configuration: configuration)
        try Migrations.migrator.migrate(database)
        readers = ThreadLocalReaders(path: directory.databasePath, configuration: configuration)
        blobs = BlobStore(directory: directory)
        sessionFiles = SessionFileRegistry(sessionsPath: directory.sessionsPath)
    }

    /// Reads on the calling thread's own connection (see ``ThreadLocalReaders``).
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        try readers.read(body)
    }

    /// For hot paths whose body is one SELECT: skips the transaction
    /// statements, a third of the cost of a small read.
    func readSingleStatement<T>(_ body: (Database) throws -> T) throws -> T {
        try readers.readSingleStatement(body)
    }

    /// Runs `body` in an IMMEDIATE transaction, which takes SQLite's write lock
    /// across processes (the server and `minihost gc`) before anything is read.
    /// Blob placement and removal happen inside it, so "referenced?" and
    /// "delete" can't interleave with another writer.
    func writeImmediately<T>(_ body: (Database) throws -> T) throws -> T {
        try database.writeWithoutTransaction { db in
            var result: T?
            try db.inTransaction(.immediate) {
                result = try body(db)
                return .commit
            }
            return result!
        }
    }

    /// Runs `body` in an IMMEDIATE transaction; the blob hashes it adds to
    /// `released` (rows that stopped referencing them) are deleted after the
    /// commit if nothing references them any more. The writer connection is
    /// still held then, so no upload can start referencing them in between.
    func writeReleasingBlobs<T>(_ body: (Database, inout Set<String>) throws -> T) throws -> T {
        try database.writeWithoutTransaction { db in
            var released: Set<String> = []
            var result: T?
            try db.inTransaction(.immediate) {
                result = try body(db, &released)
                return .commit
            }
            for hash in released where try Upload.filter(Column("blob") == hash).fetchCount(db) == 0 {
                blobs.remove(hash)
            }
            return result!
        }
    }
}

/// Times as the JSON APIs show them: `2026-04-17T12:00:00.000Z`.
public enum ISO8601Timestamp {
    public static func format(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let millis = Int32(((milliseconds % 1000) + 1000) % 1000)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(millis, 3))Z"
    }

    /// Parses ISO-8601 date-times with or without fractional seconds, with `Z`
    /// or an offset; nil for anything else (including a bare date).
    public static func parse(_ text: String) -> Date? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard trimmed.count >= 20, trimmed.count <= 40 else { return nil }
        for options: ISO8601DateFormatter.Options in [
            [.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime],
        ] {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = options
            if let date = formatter.date(from: trimmed) { return date }
        }
        return nil
    }
}
