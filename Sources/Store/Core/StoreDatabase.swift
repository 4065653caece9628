import GRDB
import Glibc
import Synchronization

/// The SQLite side of the store, shared by the core and every side store:
/// one writer (GRDB's `DatabasePool`), read-only connections lent to each
/// read (``ReadConnections``), and transactions whose GRDB errors come out as
/// ``StorageError``, so nothing above the store sees GRDB.
final class StoreDatabase: Sendable {
    let pool: DatabasePool
    private let readers: ReadConnections
    /// Times a statement found another connection's lock and waited (metrics).
    let busyRetries: BusyCounter

    /// Opens (creating and migrating) the database in `directory`.
    init(directory: DataDirectory, configuration: StoreConfiguration) throws {
        let busyRetries = BusyCounter()
        self.busyRetries = busyRetries
        var sqlite = Configuration()
        sqlite.busyMode = .callback(Self.busyHandler(counting: busyRetries))
        sqlite.label = "minihost"
        // One process at a time opens a data folder: SQLite refuses to switch a
        // new database to WAL while another connection holds it (no busy
        // wait there), and GRDB reads which migrations are applied before
        // taking the write lock, so two processes opening a new folder at
        // once (serve and a CLI command, or several workers) would both run v1.
        pool = try StorageError.translating {
            try directory.withExclusiveLock(".open.lock") { () throws -> DatabasePool in
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
        }
        readers = ReadConnections(path: directory.databasePath, configuration: sqlite)
    }

    /// SQLite's own busy timeout (its back-off, 15 s in all), counting each
    /// wait: the timeout alone can't say how often writers collide.
    private static func busyHandler(counting retries: BusyCounter) -> Database.BusyCallback {
        // As sqlite3_busy_timeout sleeps, in milliseconds.
        let delays = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100]
        let limit = 15_000
        return { tries in
            retries.count.add(1, ordering: .relaxed)
            let delay = delays[min(tries, delays.count - 1)]
            let slept = tries < delays.count ? delays[..<tries].reduce(0, +)
                : delays.reduce(0, +) + (tries - delays.count) * delays[delays.count - 1]
            guard slept + delay <= limit else { return false }
            usleep(useconds_t(delay * 1000))
            return true
        }
    }

    /// Closes the read connections no read is using (see ``ReadConnections``).
    @discardableResult
    func closeIdleReaders() -> Int { readers.closeIdle() }

    /// Reads on a connection of its own for the read (see ``ReadConnections``).
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
        try StorageError.translating { try pool.write(body) }
    }

    /// Runs `body` in an IMMEDIATE transaction, which takes SQLite's write lock
    /// across processes (the server and `minihost gc`) before anything is read.
    /// Blob placement and removal happen inside it, so "referenced?" and
    /// "delete" can't interleave with another writer.
    func writeImmediately<T>(_ body: (Database) throws -> T) throws -> T {
        try StorageError.translating {
            try pool.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        }
    }
}

/// A count shared with SQLite's busy handler.
final class BusyCounter: Sendable {
    let count = Atomic<Int64>(0)
}
