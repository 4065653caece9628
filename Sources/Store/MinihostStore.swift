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
    public let configuration: StoreConfiguration
    let database: DatabasePool
    private let readers: ThreadLocalReaders
    /// Coordinates chunks written in place (see ``ChunkWriter``).
    let sessionFiles: SessionFileRegistry
    let logger = Logger(label: "minihost.store")

    /// Opens (creating if needed) the data folder and brings the schema up to date.
    public init(directory: DataDirectory, configuration: StoreConfiguration = StoreConfiguration()) throws {
        self.directory = directory
        self.configuration = configuration
        try directory.create()
        // A process that crashed (not the machine) may have left renames and
        // new folders in the page cache only; later writers would find them
        // and not sync them again. One syncfs at start makes them durable.
        try FileSystem.syncFileSystem(containing: directory.root)
        var sqlite = Configuration()
        sqlite.busyMode = .timeout(15)
        sqlite.label = "minihost"
        // One process at a time opens a data folder: SQLite refuses to switch a
        // new database to WAL while another connection holds it (no busy
        // wait there), and GRDB reads which migrations are applied before
        // taking the write lock, so two processes opening a new folder at
        // once (serve and a CLI command, or several workers) would both run v1.
        let pool = try directory.withExclusiveLock(".open.lock") { () throws -> DatabasePool in
            try directory.createPrivateDatabaseFile()
            let pool = try DatabasePool(path: directory.databasePath, configuration: sqlite)
            // WAL's usual NORMAL may lose the last commits in a power cut; an
            // acknowledged upload whose row rolled back would then have its
            // fsync'd blob deleted by gc. FULL syncs the WAL at every commit.
            // Set on the writer after GRDB opened it: GRDB sets NORMAL when it
            // turns WAL on, after `prepareDatabase` has run.
            let synchronous = configuration.synchronousCommits ? "FULL" : "NORMAL"
            try pool.writeWithoutTransaction { try $0.execute(sql: "PRAGMA synchronous = \(synchronous)") }
            try Migrations.migrator.migrate(pool)
            return pool
        }
        database = pool
        readers = ThreadLocalReaders(path: directory.databasePath, configuration: sqlite)
        blobs = BlobStore(directory: directory)
        sessionFiles = SessionFileRegistry(sessionsPath: directory.sessionsPath)
    }

    #if DEBUG
    /// Tests only: runs while a released blob is about to be unlinked, to
    /// prove another writer can't slip in between the check and the unlink.
    nonisolated(unsafe) static var beforeBlobUnlink: ((String) -> Void)?
    #endif

    /// Reads on the calling thread's own connection (see ``ThreadLocalReaders``).
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        try StorageError.translating { try readers.read(body) }
    }

    /// For hot paths whose body is one SELECT: skips the transaction
    /// statements, a third of the cost of a small read.
    func readSingleStatement<T>(_ body: (Database) throws -> T) throws -> T {
        try StorageError.translating { try readers.readSingleStatement(body) }
    }

    /// A write in a transaction of GRDB's choice (DEFERRED), for rows that
    /// touch no blob.
    func write<T>(_ body: (Database) throws -> T) throws -> T {
        try StorageError.translating { try database.write(body) }
    }

    /// Runs `body` in an IMMEDIATE transaction, which takes SQLite's write lock
    /// across processes (the server and `minihost gc`) before anything is read.
    /// Blob placement and removal happen inside it, so "referenced?" and
    /// "delete" can't interleave with another writer.
    func writeImmediately<T>(_ body: (Database) throws -> T) throws -> T {
        try StorageError.translating { try immediateTransaction(body) }
    }

    private func immediateTransaction<T>(_ body: (Database) throws -> T) throws -> T {
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
    /// commit if nothing references them any more.
    ///
    /// The check and the unlink run in a second IMMEDIATE transaction: holding
    /// only this process's writer connection is not enough, because another
    /// process (`minihost gc`, a second worker process) may commit an upload
    /// that reuses the blob in between. A crash between the two transactions
    /// leaves an unreferenced blob, which gc removes.
    func writeReleasingBlobs<T>(_ body: (Database, inout Set<String>) throws -> T) throws -> T {
        var released: Set<String> = []
        let result = try writeImmediately { db in try body(db, &released) }
        guard !released.isEmpty else { return result }
        do {
            try writeImmediately { db in
                for hash in released where try Upload.filter(Column("blob") == hash).fetchCount(db) == 0 {
                    #if DEBUG
                    Self.beforeBlobUnlink?(hash)
                    #endif
                    blobs.remove(hash)
                }
            }
        } catch {
            // The rows are committed; an unreleased blob is only garbage.
            logger.warning("blob release deferred to gc", metadata: ["error": "\(error)"])
        }
        return result
    }
}

/// How the store is set up: the bounds it enforces whatever a dialect asks
/// for, so no input can make it do unbounded work (least of all under the
/// write lock), and how durable a commit is.
public struct StoreConfiguration: Sendable {
    /// The most chunks one resumable upload may have; a chunk index must be
    /// below this (and below the declared size, since no chunk is empty).
    public var maxChunksPerSession: Int64
    /// How many missing chunk indices an error names (the rest are counted).
    public var missingChunksNamed: Int
    /// Sync SQLite's WAL at every commit (`synchronous=FULL`). Off, a power
    /// cut may roll back the last acknowledged uploads' rows, and gc then
    /// deletes their blobs: only for measuring what FULL costs.
    public var synchronousCommits: Bool

    public init(maxChunksPerSession: Int64 = 10_000, missingChunksNamed: Int = 20, synchronousCommits: Bool = true) {
        self.maxChunksPerSession = max(1, maxChunksPerSession)
        self.missingChunksNamed = max(1, missingChunksNamed)
        self.synchronousCommits = synchronousCommits
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
