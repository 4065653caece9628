import Synchronization

/// The last total seen per counter, so a total kept elsewhere can feed a
/// Prometheus counter, which only ever grows by an amount.
final class CumulativeCounters: Sendable {
    private let seen = Mutex<[String: Int64]>([:])

    /// How much `key`'s total grew since the last call (0 if it shrank).
    func advance(_ key: String, to total: Int64) -> Int64 {
        seen.withLock { seen in
            let growth = total - (seen[key] ?? 0)
            if growth > 0 { seen[key] = total }
            return max(0, growth)
        }
    }
}
