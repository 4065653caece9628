import GRDB
import Glibc
import Synchronization

/// One read-only SQLite connection per thread, closed again when the server
/// goes quiet.
///
/// The worker pool is many blocking threads, each reading once or twice per
/// request. Through `DatabasePool` every read passes GRDB's pool lock (a
/// dispatch barrier); with 16+ threads that lock, not SQLite, dominated a
/// profile of downloads. A connection owned by its thread is never contended.
/// WAL lets all of them read while the pool's single writer writes.
///
/// Each connection holds about 136 KB of SQLite's memory (its page cache's
/// first allocation, schema, statements), 17 MB over 128 threads after a
/// load. ``closeIdle()`` closes every connection not in use; a thread opens
/// its own again on its next read.
final class ThreadLocalReaders: Sendable {
    /// A thread's connection, behind a lock only ``closeIdle()`` ever
    /// contends for.
    private final class Slot: @unchecked Sendable {
        let lock = Mutex<DatabaseQueue?>(nil)
    }

    /// Every thread's slot, for ``closeIdle()``.
    private final class Registry: Sendable {
        private struct Weak: @unchecked Sendable { weak var slot: Slot? }
        private let slots = Mutex<[Weak]>([])

        func add(_ slot: Slot) {
            slots.withLock { slots in
                slots.removeAll { $0.slot == nil }
                slots.append(Weak(slot: slot))
            }
        }

        var all: [Slot] { slots.withLock { $0.compactMap(\.slot) } }
    }

    private let slots: PerThread<Slot>
    private let registry = Registry()
    private let open: @Sendable () throws -> DatabaseQueue

    init(path: String, configuration: Configuration) {
        var configuration = configuration
        configuration.readonly = true
        configuration.label = "minihost.reader"
        // Each thread's connection has its own small page cache, and a
        // request lands on any thread: without a map every B-tree page a
        // read touches is a pread into a cold cache (a listing's 500 index
        // seeks spent a fifth of their time copying pages). Mapped, the
        // pages come from the OS's one page cache. Resident mapped pages
        // count in RSS as file pages (RssFile), which the OS can drop.
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA mmap_size = 268435456") }
        open = { [configuration] in try DatabaseQueue(path: path, configuration: configuration) }
        let registry = registry
        slots = PerThread {
            let slot = Slot()
            registry.add(slot)
            return slot
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        try withReader { try $0.read(body) }
    }

    /// Without BEGIN/COMMIT around it: for a body that runs exactly one
    /// SELECT, which SQLite already reads from one consistent snapshot.
    func readSingleStatement<T>(_ body: (Database) throws -> T) throws -> T {
        try withReader { try $0.unsafeRead(body) }
    }

    private func withReader<T>(_ body: (DatabaseQueue) throws -> T) throws -> T {
        try slots.get().lock.withLock { queue in
            if queue == nil { queue = try open() }
            return try body(queue!)
        }
    }

    /// Closes every connection no thread is reading with. Returns how many.
    @discardableResult
    func closeIdle() -> Int {
        var closed = 0
        for slot in registry.all {
            let queue = slot.lock.withLockIfAvailable { queue -> DatabaseQueue? in
                defer { queue = nil }
                return queue
            }
            // Closed here, outside the slot's lock (GRDB closes on release).
            if case let queue?? = queue, (try? queue.close()) != nil { closed += 1 }
        }
        return closed
    }
}
