import GRDB

/// The SQLite side of the store, shared by the core and every side store:
/// one writer (GRDB's `DatabasePool`), a read-only connection per thread
/// (``ThreadLocalReaders``), and transactions whose GRDB errors come out as
/// ``StorageError``, so nothing above the store sees GRDB.
final class StoreDatabase: Sendable {
    let pool: DatabasePool
    private let readers: ThreadLocalReaders

    /// Opens (creating and migrating) the database in `directory`.
    init(directory: DataDirectory, configuration: StoreConfiguration) throws {
        var sqlite = Configuration()
        sqlite.busyMode = .timeout(15)
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
        readers = ThreadLocalReaders(path: directory.databasePath, configuration: sqlite)
    }

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
