import HTTPCore
import Prometheus

/// Counts answered requests into ``ServerMetrics`` for one worker thread.
///
/// Asking the registry for a series builds the metric's name and looks it up
/// by name and labels under the registry's lock: ~6 % of a worker's time on
/// small requests. A recorder asks once per route, method and status and keeps
/// what it got. It belongs to one thread, so its memory needs no lock (a
/// shared one, tried first, convoyed 128 threads: 18 % of the worker's time).
/// The keys come from the route table and status codes, so it stays small.
///
/// Not thread-safe: make one per thread with ``ServerMetrics/recorder()``.
public final class RequestRecorder {
    private let metrics: ServerMetrics
    private var known: [Key: ServerMetrics.RequestSeries] = [:]

    private struct Key: Hashable {
        var dialect: String
        var route: String
        var method: String
        var status: Int
    }

    init(metrics: ServerMetrics) {
        self.metrics = metrics
    }

    /// Counts one answered request.
    public func observe(method: String, answeredBy route: AnsweringRoute?, status: Int, duration: Duration,
                        bytesReceived: Int64, bytesSent: Int64) {
        let key = Key(dialect: route?.dialect ?? "none", route: route?.route ?? "unmatched",
                      method: ServerMetrics.methodLabel(method), status: status)
        let series: ServerMetrics.RequestSeries
        if let found = known[key] {
            series = found
        } else {
            series = metrics.series(dialect: key.dialect, route: key.route, method: key.method, status: status)
            known[key] = series
        }
        series.requests.increment()
        series.latency.record(duration)
        if bytesReceived > 0 { series.received.increment(by: bytesReceived) }
        if bytesSent > 0 { series.sent.increment(by: bytesSent) }
    }
}
