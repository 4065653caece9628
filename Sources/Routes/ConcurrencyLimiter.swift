import Glibc

/// At most `limit` callers inside at once; the rest wait. Bounds work that is
/// expensive in memory, like scrypt at 128 MiB a hash.
public final class ConcurrencyLimiter: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var available: Int

    public init(limit: Int) {
        available = max(1, limit)
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    public func run<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        while available == 0 { pthread_cond_wait(&condition, &mutex) }
        available -= 1
        pthread_mutex_unlock(&mutex)
        defer {
            pthread_mutex_lock(&mutex)
            available += 1
            pthread_cond_signal(&condition)
            pthread_mutex_unlock(&mutex)
        }
        return try body()
    }
}
