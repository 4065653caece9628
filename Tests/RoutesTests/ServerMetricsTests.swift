import Foundation
import HTTPCore
import ServerMetrics
import Testing

/// Request metrics keep one series per route, method and status, however
/// often and from however many threads' recorders each is counted (each
/// recorder looks a series up once and keeps it).
@Suite struct ServerMetricsTests {
    /// `name{labels} value` lines of the exposition, by name and sorted labels.
    private func values(_ metrics: ServerMetrics) -> [String: Double] {
        let text = String(decoding: metrics.render(MetricsSample()), as: UTF8.self)
        var found: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            // Label values may hold spaces (a route is `GET /path`): the value is after the last one.
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            found[String(line[..<space])] = value
        }
        return found
    }

    @Test func eachRouteMethodAndStatusIsOneSeriesThatAddsUp() {
        let metrics = ServerMetrics()
        let recorders = [metrics.recorder(), metrics.recorder()]
        let download = AnsweringRoute(route: "GET /api/minihost/download", dialect: "minihost")
        let upload = AnsweringRoute(route: "POST /api/minihost/upload", dialect: "minihost")
        for index in 0..<3 {
            recorders[index % 2].observe(method: "GET", answeredBy: download, status: 200,
                                         duration: .milliseconds(3), bytesReceived: 0, bytesSent: 1024)
        }
        recorders[1].observe(method: "GET", answeredBy: download, status: 404, duration: .milliseconds(1),
                             bytesReceived: 0, bytesSent: 0)
        recorders[0].observe(method: "POST", answeredBy: upload, status: 200, duration: .milliseconds(40),
                             bytesReceived: 5000, bytesSent: 0)
        recorders[1].observe(method: "BREW", answeredBy: nil, status: 404, duration: .milliseconds(1),
                             bytesReceived: 0, bytesSent: 0)
        let found = values(metrics)
        let requests = found.filter { $0.key.hasPrefix("minihost_http_requests_total{") }
        #expect(requests.count == 4, "\(requests)")
        #expect(requests.first { $0.key.contains("route=\"GET /api/minihost/download\"") && $0.key.contains("status=\"200\"") }?.value == 3)
        #expect(requests.first { $0.key.contains("route=\"GET /api/minihost/download\"") && $0.key.contains("status=\"404\"") }?.value == 1)
        #expect(requests.first { $0.key.contains("route=\"unmatched\"") && $0.key.contains("method=\"other\"") }?.value == 1)
        #expect(found.first { $0.key.hasPrefix("minihost_http_sent_bytes_total{") && $0.key.contains("dialect=\"minihost\"") }?.value == 3072)
        #expect(found.first { $0.key.hasPrefix("minihost_http_received_bytes_total{") && $0.key.contains("dialect=\"minihost\"") }?.value == 5000)
        let downloadLatency = found.first { $0.key.hasPrefix("minihost_http_request_duration_seconds_count{")
            && $0.key.contains("route=\"GET /api/minihost/download\"") }
        #expect(downloadLatency?.value == 4)
    }
}
