import Glibc

/// Graceful stop without signal handlers: block the signals in every thread
/// (before the pool starts, so the workers inherit the mask) and wait for them
/// on one thread with `sigwait`.
///
/// This also takes SIGTERM back from libfcgi, whose `FCGX_Init` installs its
/// own handler that leaves threads blocked in accept.
public enum TerminationSignals {
    public static let stopSignals: [Int32] = [SIGINT, SIGTERM]

    /// Blocks `signals` for the calling thread and every thread it creates later.
    public static func block(_ signals: [Int32] = stopSignals) {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Waits until one of `signals` arrives and returns it.
    public static func wait(for signals: [Int32] = stopSignals) -> Int32 {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        var received: Int32 = 0
        while sigwait(&set, &received) != 0 {}
        return received
    }

    /// Waits at most `timeout` seconds for one of `signals`; nil if none came.
    public static func wait(for signals: [Int32], timeout: Double) -> Int32? {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        var limit = timespec(tv_sec: Int(timeout), tv_nsec: Int((timeout - timeout.rounded(.down)) * 1e9))
        while true {
            let received = sigtimedwait(&set, nil, &limit)
            if received >= 0 { return received }
            if errno != EINTR { return nil }  // EAGAIN: the time is up
        }
    }
}
