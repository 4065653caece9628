import Foundation

/// Progress of one file's transfer, shown on standard error: a redrawn bar
/// with rate and ETA on a terminal, otherwise a plain line every 10 % (and
/// at most every 5 s), which logs and CI keep readable. Thread-safe: parallel
/// parts report into one.
public final class TransferProgress: @unchecked Sendable {
    private let label: String
    private let total: Int64
    private let interactive: Bool
    private let lock = NSLock()
    private var done: [Int: Int64] = [:]
    private let started = Date()
    private var lastDrawn = Date.distantPast
    private var lastTenth = -1

    public init(label: String, total: Int64, interactive: Bool = isatty(2) == 1) {
        self.label = label
        self.total = total
        self.interactive = interactive
    }

    /// Part `part` has `bytes` of its bytes on the server (or on disk, pulling).
    public func update(part: Int, bytes: Int64) {
        lock.lock()
        defer { lock.unlock() }
        done[part] = bytes
        draw(final: false)
    }

    public func finish() {
        lock.lock()
        defer { lock.unlock() }
        draw(final: true)
    }

    private func draw(final: Bool) {
        let now = Date()
        let current = min(total, done.values.reduce(0, +))
        let fraction = total > 0 ? Double(current) / Double(total) : 1
        let elapsed = max(now.timeIntervalSince(started), 0.001)
        let rate = Double(current) / elapsed
        let eta = rate > 0 ? Double(total - current) / rate : 0
        if interactive {
            guard final || now.timeIntervalSince(lastDrawn) >= 0.1 else { return }
            lastDrawn = now
            let width = 30, filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            let line = "\r\(label) [\(bar)] \(Int(fraction * 100))% \(Self.size(rate))/s ETA \(Self.clock(eta))\u{1B}[K"
            FileHandle.standardError.write(Data((line + (final ? "\n" : "")).utf8))
        } else {
            let tenth = Int(fraction * 10)
            guard final || tenth > lastTenth || now.timeIntervalSince(lastDrawn) >= 5 else { return }
            lastTenth = tenth
            lastDrawn = now
            let line = "\(label): \(Int(fraction * 100))% (\(Self.size(Double(current))) of \(Self.size(Double(total)))), "
                + "\(Self.size(rate))/s, ETA \(Self.clock(eta))\n"
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    static func size(_ bytes: Double) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var value = bytes, unit = 0
        while value >= 1000 && unit < units.count - 1 { value /= 1000; unit += 1 }
        return unit == 0 ? "\(Int(value)) B" : String(format: "%.1f %@", value, units[unit])
    }

    static func clock(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded())
        return String(format: "%02d:%02d", whole / 60, whole % 60)
    }
}
