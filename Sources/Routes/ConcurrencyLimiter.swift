import Glibc
import HTTPCore

/// At most `limit` callers inside at once, at most `maxWaiting` more waiting,
/// each for at most `maxWait` seconds. Bounds work that is expensive in
/// memory, like scrypt at 128 MiB a hash.
///
/// Every waiter holds a worker thread, so the queue is bounded too: past it
/// (or past the wait) the caller gets ``Overloaded`` at once, a 503 with
/// `Retry-After`, instead of the whole pool piling up behind password checks.
public final class ConcurrencyLimiter: @unchecked Sendable {
    /// Refused because the limiter is saturated. Rendered in the route's dialect.
    public struct Overloaded: HTTPError {
        public let status = HTTPStatus.serviceUnavailable
        public let publicMessage = "Server busy, retry shortly"
        public let headers = HTTPHeaders([("Retry-After", "2")])
    }

    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private let limit: Int
    private var available: Int
    private var waiting = 0
    private var waited: Int64 = 0
    private var refused: Int64 = 0
    private let maxWaiting: Int
    private let maxWait: Double

    public init(limit: Int, maxWaiting: Int = 16, maxWait: Double = 10) {
        self.limit = max(1, limit)
        available = self.limit
        self.maxWaiting = max(0, maxWaiting)
        self.maxWait = max(0, maxWait)
        pthread_mutex_init(&mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(&condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    /// How many callers wait right now (for metrics and tests).
    public var waitingCount: Int {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return waiting
    }

    /// What the limiter is doing, for metrics.
    public struct Statistics: Sendable {
        public var running: Int
        public var waiting: Int
        /// Callers that had to queue, since start.
        public var waited: Int64
        /// Callers refused (queue full or wait too long), since start.
        public var refused: Int64
    }

    public var statistics: Statistics {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return Statistics(running: limit - available, waiting: waiting, waited: waited, refused: refused)
    }

    public func run<T>(_ body: () throws -> T) throws -> T {
        try acquire()
        defer {
            pthread_mutex_lock(&mutex)
            available += 1
            pthread_cond_signal(&condition)
            pthread_mutex_unlock(&mutex)
        }
        return try body()
    }

    private func acquire() throws {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if available > 0 {
            available -= 1
            return
        }
        guard waiting < maxWaiting else {
            refused += 1
            throw Overloaded()
        }
        waited += 1
        waiting += 1
        defer { waiting -= 1 }
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let whole = maxWait.rounded(.down)
        deadline.tv_sec += Int(whole)
        deadline.tv_nsec += Int((maxWait - whole) * 1e9)
        if deadline.tv_nsec >= 1_000_000_000 {
            deadline.tv_sec += 1
            deadline.tv_nsec -= 1_000_000_000
        }
        while available == 0 {
            if pthread_cond_timedwait(&condition, &mutex, &deadline) == ETIMEDOUT && available == 0 {
                refused += 1
                throw Overloaded()
            }
        }
        available -= 1
    }
}

/// The client went away while its request waited; nothing is answered to
/// anyone (nginx logs 499), and no more work is done for it.
public struct ClientGone: HTTPError {
    public let status = HTTPStatus(code: 499, reason: "Client Closed Request")
    public let publicMessage = "Client closed the request"
}
