import GRDB
import Synchronization

/// Read-only SQLite connections for the worker threads, lent out most
/// recently returned first, and closed again when the server goes quiet.
///
/// The worker pool is many blocking threads, each reading once or twice per
/// request. Through `DatabasePool` every read passes GRDB's pool lock (a
/// dispatch barrier); with 16+ threads that lock, not SQLite, dominated a
/// profile of downloads. Here the lock is held for a pop and a push, never
/// across a read. WAL lets all connections read while the pool's single
/// writer writes.
///
/// Last in, first out, so requests one after another (a tus upload's
/// `PATCH`es, a script's calls) keep reading on the same warm connection,
/// its statements prepared and its pages cached. A connection per thread did
/// not: the kernel hands each FastCGI connection to the thread idle longest,
/// and after the idle release every such request opened a new connection
/// (133 for 126 `PATCH`es, about 1 ms each). There are only as many
/// connections as reads ever ran at once.
///
/// Each connection holds about 136 KB of SQLite's memory. ``closeIdle()``
/// closes every connection not lent out; the next read opens one again.
final class ReadConnections: Sendable {
    private let idle = Mutex<[DatabaseQueue]>([])
    private let open: @Sendable () throws -> DatabaseQueue

    init(path: String, configuration: Configuration) {
        var configuration = configuration
        configuration.readonly = true
        configuration.label = "minihost.reader"
        // A request may read on any connection: without a map every B-tree
        // page a read touches is a pread into that connection's cold cache
        // (a listing's 500 index seeks spent a fifth of their time copying
        // pages). Mapped, the pages come from the OS's one page cache.
        // Resident mapped pages count in RSS as file pages (RssFile), which
        // the OS can drop.
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA mmap_size = 268435456") }
        open = { [configuration] in try DatabaseQueue(path: path, configuration: configuration) }
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        try withConnection { try $0.read(body) }
    }

    /// Without BEGIN/COMMIT around it: for a body that runs exactly one
    /// SELECT, which SQLite already reads from one consistent snapshot.
    func readSingleStatement<T>(_ body: (Database) throws -> T) throws -> T {
        try withConnection { try $0.unsafeRead(body) }
    }

    private func withConnection<T>(_ body: (DatabaseQueue) throws -> T) throws -> T {
        let connection = try idle.withLock { $0.popLast() } ?? open()
        defer { idle.withLock { $0.append(connection) } }
        return try body(connection)
    }

    /// Closes every connection no read is using. Returns how many.
    @discardableResult
    func closeIdle() -> Int {
        let closing = idle.withLock { connections -> [DatabaseQueue] in
            defer { connections = [] }
            return connections
        }
        // Closed outside the lock: a read meanwhile opens its own.
        return closing.filter { (try? $0.close()) != nil }.count
    }
}
