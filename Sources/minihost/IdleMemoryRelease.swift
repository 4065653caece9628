import CLinuxShims
import Foundation
import Synchronization

/// Gives memory back to the system once the worker goes quiet.
///
/// After a busy spell a worker stayed near its peak: 97 MB ten seconds after
/// the benchmark's mixed load, against 40 MB at start. Most of it was each
/// thread's SQLite read connection (about 136 KB apiece) and what glibc
/// keeps in its arenas for reuse. When no request has finished for `quiet`
/// seconds, and some had since the last time, this closes the idle read
/// connections and runs `malloc_trim(0)`.
final class IdleMemoryRelease: Sendable {
    private let finished = Atomic<Int>(0)

    func requestFinished() {
        finished.add(1, ordering: .relaxed)
    }

    func start(quiet: TimeInterval = 2, release: @escaping @Sendable () -> Void) {
        Thread.detachNewThread { [self] in
            var seen = 0
            var released = 0
            while true {
                Thread.sleep(forTimeInterval: quiet)
                let now = finished.load(ordering: .relaxed)
                if now == seen && now != released {
                    release()
                    _ = minihost_release_free_memory()
                    released = now
                }
                seen = now
            }
        }
    }
}
