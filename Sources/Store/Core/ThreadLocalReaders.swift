import GRDB
import Glibc

/// One read-only SQLite connection per thread.
///
/// The worker pool is many blocking threads, each reading once or twice per
/// request. Through `DatabasePool` every read passes GRDB's pool lock (a
/// dispatch barrier); with 16+ threads that lock, not SQLite, dominated a
/// profile of downloads. A connection owned by its thread is never contended.
/// WAL lets all of them read while the pool's single writer writes.
final class ThreadLocalReaders: Sendable {
    private let connections: PerThread<DatabaseQueue>

    init(path: String, configuration: Configuration) {
        var configuration = configuration
        configuration.readonly = true
        configuration.label = "minihost.reader"
        connections = PerThread { [configuration] in try DatabaseQueue(path: path, configuration: configuration) }
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        try reader().read(body)
    }

    /// Without BEGIN/COMMIT around it: for a body that runs exactly one
    /// SELECT, which SQLite already reads from one consistent snapshot.
    func readSingleStatement<T>(_ body: (Database) throws -> T) throws -> T {
        try reader().unsafeRead(body)
    }

    private func reader() throws -> DatabaseQueue {
        try connections.get()
    }
}
