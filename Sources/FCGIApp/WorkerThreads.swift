import CFastCGI
import Glibc

/// The live worker threads, so `stop` can wake the idle ones and wait for all.
final class WorkerThreads: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    /// Threads started and not yet ended (registered or about to be).
    private(set) var count = 0
    /// Threads that may be signalled: registered by themselves, removed
    /// before they end, so a signal never reaches a finished thread.
    private var registered: [pthread_t] = []
    private var isStopping = false

    var stopping: Bool {
        get { pthread_mutex_lock(&mutex); defer { pthread_mutex_unlock(&mutex) }; return isStopping }
        set { pthread_mutex_lock(&mutex); isStopping = newValue; pthread_mutex_unlock(&mutex) }
    }

    init() {
        pthread_mutex_init(&mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(&condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    /// Called before a thread is created.
    func starting() {
        pthread_mutex_lock(&mutex); count += 1; pthread_mutex_unlock(&mutex)
    }

    /// Called first thing on the new thread.
    func register() {
        pthread_mutex_lock(&mutex); registered.append(pthread_self()); pthread_mutex_unlock(&mutex)
    }

    /// Called last thing on the thread.
    func unregister() {
        pthread_mutex_lock(&mutex)
        let me = pthread_self()
        registered.removeAll { pthread_equal($0, me) != 0 }
        count -= 1
        pthread_cond_broadcast(&condition)
        pthread_mutex_unlock(&mutex)
    }

    /// Sends `signal` to every registered thread. Threads busy with a request
    /// have it blocked; it stays pending until they next accept.
    func signalAll(_ signal: Int32) {
        pthread_mutex_lock(&mutex)
        for thread in registered { pthread_kill(thread, signal) }
        pthread_mutex_unlock(&mutex)
    }

    /// Waits until every thread ended or `timeout` seconds passed, calling
    /// `nudge` every 50 ms meanwhile (a thread between its check of the stop
    /// flag and its accept can miss one signal, never two). True if all ended.
    func waitUntilNone(timeout: Double, nudge: () -> Void) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let end = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9 + timeout
        while true {
            nudge()
            pthread_mutex_lock(&mutex)
            if count == 0 { pthread_mutex_unlock(&mutex); return true }
            clock_gettime(CLOCK_MONOTONIC, &now)
            let current = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
            if current >= end { pthread_mutex_unlock(&mutex); return false }
            let wake = min(end, current + 0.05)
            var deadline = timespec(tv_sec: Int(wake), tv_nsec: Int((wake - wake.rounded(.down)) * 1e9))
            pthread_cond_timedwait(&condition, &mutex, &deadline)
            let done = count == 0
            pthread_mutex_unlock(&mutex)
            if done { return true }
        }
    }
}

/// Wakes worker threads blocked in libfcgi's accept without touching the
/// listening socket: a no-op handler for SIGUSR2, installed without
/// `SA_RESTART`, makes `accept` fail with EINTR, and libfcgi then returns
/// because ``FastCGIServer/stop()`` set its shutdown flag first.
///
/// Each worker thread unblocks the signal only around accept; while it
/// handles a request the signal is blocked, so no read or write of a request
/// in flight is ever interrupted.
enum AcceptInterruption {
    static let signal = SIGUSR2

    static func install() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(signal, &action, nil)
    }

    static func unblock() { change(SIG_UNBLOCK) }
    static func block() { change(SIG_BLOCK) }

    private static func change(_ how: Int32) {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, signal)
        pthread_sigmask(how, &set, nil)
    }
}
