import Glibc

/// Lets one idle worker thread at a time wait in accept, and gives that turn
/// to the thread that went idle last.
///
/// Threads blocked in `accept` on one socket are woken first come, first
/// served: one request after another (a tus upload's `PATCH`es, a script's
/// calls) went each to the thread idle longest, whose SQLite connection the
/// idle release had closed and whose caches had gone cold. A new read
/// connection alone cost 1–2 ms per request. Handed on last in, first out,
/// a sequential client keeps meeting the same two threads; under load every
/// thread still takes its share, since the turn passes on as soon as a
/// connection is accepted.
final class AcceptTurn: @unchecked Sendable {
    /// One per worker thread: where it sleeps while others hold the turn.
    final class Waiter {
        fileprivate let condition: UnsafeMutablePointer<pthread_cond_t> = .allocate(capacity: 1)
        fileprivate var woken = false

        init() { pthread_cond_init(condition, nil) }

        deinit {
            pthread_cond_destroy(condition)
            condition.deallocate()
        }
    }

    private let mutex: UnsafeMutablePointer<pthread_mutex_t> = .allocate(capacity: 1)
    /// Whether a thread holds the turn (is in accept or about to be).
    private var taken = false
    /// Idle threads, the one that went idle last at the end.
    private var idle: [Waiter] = []
    private var closed = false

    init() { pthread_mutex_init(mutex, nil) }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Threads waiting for the turn.
    var waiting: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return idle.count
    }

    /// Blocks until the calling thread holds the turn. False once
    /// ``close()`` was called: the thread should end.
    func take(_ waiter: Waiter) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard !closed else { return false }
        if !taken {
            taken = true
            return true
        }
        waiter.woken = false
        idle.append(waiter)
        while !waiter.woken { pthread_cond_wait(waiter.condition, mutex) }
        return !closed
    }

    /// Hands the turn to the thread that went idle last, or frees it.
    /// Call once accept returned, before handling what it accepted.
    func pass() {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if let next = idle.popLast() {
            next.woken = true
            pthread_cond_signal(next.condition)
        } else {
            taken = false
        }
    }

    /// Wakes every waiting thread with no turn to take, now and later.
    func close() {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        closed = true
        for waiter in idle {
            waiter.woken = true
            pthread_cond_signal(waiter.condition)
        }
        idle.removeAll()
    }
}
