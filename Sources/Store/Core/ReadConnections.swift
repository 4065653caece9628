import GRDB
import Synchronization

/// Read-only SQLite connections for the worker threads, lent out lowest slot
/// first, and closed again when the server goes quiet.
///
/// The worker pool is many blocking threads, each reading once or twice per
/// request. Through `DatabasePool` every read passes GRDB's pool lock (a
/// dispatch barrier); with 16+ threads that lock, not SQLite, dominated a
/// profile of downloads. A stack behind a `Mutex` did too under load: Swift's
/// `Mutex` on Linux is a priority-inheritance futex that hands the lock to a
/// sleeping waiter, so 32 clients formed a convoy (7.5 % of the CPU spinning
/// in its slow path, and as much again in the scheduler). So idle connections
/// sit in a fixed row of atomic slots: a read takes one with a
/// compare-and-swap and puts it back with another, never waiting. WAL lets
/// all connections read while the pool's single writer writes.
///
/// A read takes the lowest filled slot and puts its connection back into the
/// lowest empty one, so requests one after another (a tus upload's
/// `PATCH`es, a script's calls) keep reading on the same warm connection,
/// its statements prepared and its pages cached, whatever thread serves
/// them. A connection per thread did not: the kernel hands each FastCGI
/// connection to the thread idle longest, and after the idle release every
/// such request opened a new connection (133 for 126 `PATCH`es, about 1 ms
/// each). There are only as many connections as reads ever ran at once, at
/// most `capacity` of them idle (any more are closed as they come back).
///
/// Each connection holds about 136 KB of SQLite's memory. ``closeIdle()``
/// closes every connection not lent out; the next read opens one again.
final class ReadConnections: @unchecked Sendable {  // the slots are only touched atomically
    /// Each slot holds a retained `DatabaseQueue`'s address, or 0 when empty.
    private let slots: UnsafeMutablePointer<Atomic<UInt>>
    private let capacity: Int
    private let open: @Sendable () throws -> DatabaseQueue

    /// - Parameter capacity: how many idle connections are kept; more than
    ///   the worker threads that read at once is never needed.
    init(path: String, configuration: Configuration, capacity: Int = 256) {
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
        self.capacity = max(capacity, 1)
        slots = .allocate(capacity: self.capacity)
        for index in 0..<self.capacity { (slots + index).initialize(to: Atomic(0)) }
    }

    deinit {
        for index in 0..<capacity { _ = take(at: index) }
        slots.deinitialize(count: capacity)
        slots.deallocate()
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
        let connection = try takeIdle() ?? open()
        defer { putBack(connection) }
        return try body(connection)
    }

    /// Closes every connection no read is using. Returns how many.
    @discardableResult
    func closeIdle() -> Int {
        // A read meanwhile takes what is still there, or opens its own.
        (0..<capacity).compactMap { take(at: $0) }.filter { (try? $0.close()) != nil }.count
    }

    private func takeIdle() -> DatabaseQueue? {
        for index in 0..<capacity {
            if let connection = take(at: index) { return connection }
        }
        return nil
    }

    private func take(at index: Int) -> DatabaseQueue? {
        let bits = slots[index].load(ordering: .relaxed)
        // Whoever swaps a slot's address for 0 owns that connection; seeing
        // an address that was taken and put back meanwhile is harmless.
        guard bits != 0, slots[index].compareExchange(expected: bits, desired: 0, ordering: .acquiring).exchanged,
              let address = UnsafeRawPointer(bitPattern: bits) else { return nil }
        return Unmanaged<DatabaseQueue>.fromOpaque(address).takeRetainedValue()
    }

    private func putBack(_ connection: DatabaseQueue) {
        let bits = UInt(bitPattern: Unmanaged.passRetained(connection).toOpaque())
        for index in 0..<capacity where slots[index].load(ordering: .relaxed) == 0 {
            if slots[index].compareExchange(expected: 0, desired: bits, ordering: .releasing).exchanged { return }
        }
        // Every slot full: more reads ran at once than are worth keeping.
        let extra = Unmanaged<DatabaseQueue>.fromOpaque(UnsafeRawPointer(bitPattern: bits)!).takeRetainedValue()
        try? extra.close()
    }
}
