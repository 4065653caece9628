import HTTPCore
import Prometheus

/// What an operator watches, in Prometheus's text format: per route request
/// counts and latencies, bytes in and out, and values read when scraped
/// (threads busy, password checks queued, SQLite busy retries, upload
/// sessions, stored blobs, gc and sweeper runs).
///
/// Labels come from the route table only (a route's method, path pattern and
/// dialect, and a status code), never from request paths, so no client can
/// mint new series. Requests no route answered count as route `unmatched`.
///
/// Request metrics are the worker process's own (a process restart starts
/// them from zero, which Prometheus reads as a counter reset); values read
/// at scrape time come from the data folder and are the same in every process.
public final class ServerMetrics: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let cumulative = CumulativeCounters()

    /// Request latencies from a millisecond to a minute (uploads run long).
    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
        .seconds(10), .seconds(30), .seconds(60),
    ]

    public init() {}

    /// A recorder of answered requests for one thread (see ``RequestRecorder``).
    public func recorder() -> RequestRecorder {
        RequestRecorder(metrics: self)
    }

    /// The series one route, method and status counts into.
    struct RequestSeries {
        var requests: Counter
        var latency: DurationHistogram
        var received: Counter
        var sent: Counter
    }

    /// Asks the registry for the series; a ``RequestRecorder`` keeps them.
    func series(dialect: String, route: String, method: String, status: Int) -> RequestSeries {
        let labels = [("dialect", dialect), ("route", route), ("method", method)]
        return RequestSeries(
            requests: registry.makeCounter(descriptor: Self.requests, labels: labels + [("status", String(status))]),
            latency: registry.makeDurationHistogram(descriptor: Self.latency, labels: labels, buckets: Self.latencyBuckets),
            received: registry.makeCounter(descriptor: Self.received, labels: [("dialect", dialect)]),
            sent: registry.makeCounter(descriptor: Self.sent, labels: [("dialect", dialect)]))
    }

    /// The exposition text, with `sample`'s values as of now.
    public func render(_ sample: MetricsSample) -> [UInt8] {
        gauge("worker_threads", "Worker threads in this process").set(Double(sample.workerThreads))
        gauge("worker_threads_busy", "Worker threads handling a request").set(Double(sample.busyThreads))
        gauge("password_checks_running", "Password hashes (scrypt) being computed").set(Double(sample.passwordChecksRunning))
        gauge("password_checks_waiting", "Password checks queued for the scrypt limiter").set(Double(sample.passwordChecksWaiting))
        count("password_checks_waited_total", "Password checks that had to queue", sample.passwordChecksWaited)
        count("password_checks_refused_total", "Password checks refused with 503 (queue full or wait too long)",
              sample.passwordChecksRefused)
        count("sqlite_busy_retries_total", "Times a SQLite statement waited for another connection's lock",
              sample.sqliteBusyRetries)
        gauge("upload_sessions_open", "Resumable upload sessions not finished yet").set(Double(sample.uploadSessionsOpen))
        gauge("uploads", "Ready uploads").set(Double(sample.uploads))
        gauge("upload_bytes", "Bytes of ready uploads (a shared blob counts per upload)").set(Double(sample.uploadBytes))
        gauge("blob_objects", "Distinct stored blobs").set(Double(sample.blobObjects))
        gauge("blob_bytes", "Bytes of distinct stored blobs").set(Double(sample.blobBytes))
        for run in sample.maintenance {
            count("maintenance_runs_total", "gc and sweeper runs", run.runs, [("task", run.task)])
            for (what, value) in run.removed.sorted(by: { $0.key < $1.key }) {
                count("maintenance_removed_total", "What gc and the sweeper removed, by kind", value,
                      [("task", run.task), ("what", what)])
            }
            if let last = run.lastRunUnixSeconds {
                gauge("maintenance_last_run_timestamp_seconds", "When the task last finished", [("task", run.task)])
                    .set(last)
            }
        }
        return registry.emitToBuffer()
    }

    private func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Gauge {
        registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "minihost", metricName: name, unitName: "",
                                                            helpText: help), labels: labels)
    }

    /// A counter whose running total is kept elsewhere (the database, a
    /// store-wide tally): it moves by what the total grew since the last scrape.
    private func count(_ name: String, _ help: String, _ total: Int64, _ labels: [(String, String)] = []) {
        let counter = registry.makeCounter(
            descriptor: MetricNameDescriptor(namespace: "minihost", metricName: name, unitName: "", helpText: help),
            labels: labels)
        let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
        let growth = cumulative.advance(key, to: total)
        if growth > 0 { counter.increment(by: growth) }
    }

    /// Methods outside HTTP's usual set share one label value.
    static func methodLabel(_ method: String) -> String {
        ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].contains(method) ? method : "other"
    }

    // Computed: MetricNameDescriptor isn't Sendable, so it can't be a stored static.
    static var requests: MetricNameDescriptor {
        http("requests", "total", "Requests answered by the workers")
    }
    static var latency: MetricNameDescriptor {
        http("request_duration", "seconds", "Time from accept to the answer handed to nginx")
    }
    static var received: MetricNameDescriptor { http("received_bytes", "total", "Request body bytes read (uploads)") }
    static var sent: MetricNameDescriptor {
        http("sent_bytes", "total", "Body bytes served, files nginx sends for a worker included")
    }

    private static func http(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "minihost", subsystem: "http", metricName: name, unitName: unit, helpText: help)
    }
}

/// Values read when a scrape comes in.
public struct MetricsSample: Sendable {
    public var workerThreads = 0
    public var busyThreads = 0
    public var passwordChecksRunning = 0
    public var passwordChecksWaiting = 0
    public var passwordChecksWaited: Int64 = 0
    public var passwordChecksRefused: Int64 = 0
    public var sqliteBusyRetries: Int64 = 0
    public var uploadSessionsOpen = 0
    public var uploads = 0
    public var uploadBytes: Int64 = 0
    public var blobObjects = 0
    public var blobBytes: Int64 = 0
    public var maintenance: [MaintenanceSample] = []

    public init() {}
}

/// One maintenance task's running totals.
public struct MaintenanceSample: Sendable {
    public var task: String
    public var runs: Int64
    public var removed: [String: Int64]
    public var lastRunUnixSeconds: Double?

    public init(task: String, runs: Int64, removed: [String: Int64], lastRunUnixSeconds: Double?) {
        self.task = task
        self.runs = runs
        self.removed = removed
        self.lastRunUnixSeconds = lastRunUnixSeconds
    }
}
