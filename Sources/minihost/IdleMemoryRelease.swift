import CLinuxShims
import Foundation
import Synchronization

/// Gives memory back to the system once the worker goes quiet.
///
/// After a busy spell a worker stayed near its peak: 97 MB ten seconds after
/// the benchmark's mixed load, against 40 MB at start. Most of it was
/// SQLite read connections (about 136 KB apiece) and what glibc keeps in
/// its arenas for reuse. When no request has finished for `quiet` seconds,
/// and some had since the last time, this runs `release` (idle read
/// connections, kept upload buffers) and `malloc_trim(0)`.
final class IdleMemoryRelease: Sendable {
    private let finished = Atomic<Int>(0)
    /// Blocks from this size up get pages of their own, given back whole
    /// when freed. glibc's default starts at 128 KiB but rises to the size
    /// of each large block freed (up to 32 MiB), so upload buffers came from
    /// the arenas and fragmented them past what `malloc_trim` can return:
    /// after 60 concurrent 3 MB uploads a worker kept 24.5 MB of anonymous
    /// memory, 18.8 MB with the threshold fixed.
    static let mmapThreshold: Int32 = 128 << 10

    func requestFinished() {
        finished.add(1, ordering: .relaxed)
    }

    func start(quiet: TimeInterval = 2, release: @escaping @Sendable () -> Void) {
        _ = minihost_fix_mmap_threshold(Self.mmapThreshold)
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
