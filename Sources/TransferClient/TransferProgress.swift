import CLinuxShims
import Foundation

/// Progress of one file's transfer: a redrawn bar with rate and ETA on a
/// terminal, fitted to its width as it is now; otherwise a plain line every
/// 10 % (and at most every 5 s), which logs and CI keep readable.
/// Thread-safe: parallel parts report into one.
public final class TransferProgress: @unchecked Sendable {
    /// Where progress is shown.
    public struct Display: Sendable {
        /// Writes text as it is, with no newline added.
        public var write: @Sendable (String) -> Void
        /// The terminal's width in columns now, or nil where the output is
        /// no terminal. Read at every redraw, so a resized window is followed.
        public var columns: @Sendable () -> Int?

        public init(write: @escaping @Sendable (String) -> Void, columns: @escaping @Sendable () -> Int?) {
            self.write = write
            self.columns = columns
        }

        /// Writes `text` as a line of its own; on a terminal it first clears
        /// the bar being redrawn there, which the next update draws again below.
        public func line(_ text: String) {
            write((columns() == nil ? "" : "\r\u{1B}[K") + TerminalText.safe(text) + "\n")
        }

        /// Standard error; a terminal that doesn't say its width counts as 80 columns.
        public static let standardError = Display(
            write: { FileHandle.standardError.write(Data($0.utf8)) },
            columns: {
                guard isatty(2) == 1 else { return nil }
                let columns = Int(minihost_terminal_columns(2))
                return columns > 0 ? columns : 80
            })
    }

    private let label: String
    private let total: Int64
    private let display: Display
    private let interactive: Bool
    private let clock: @Sendable () -> Date
    private let lock = NSLock()
    private var done: [Int: Int64] = [:]
    private let started: Date
    private var lastDrawn = Date.distantPast
    private var lastTenth = -1

    public init(label: String, total: Int64, display: Display = .standardError,
                clock: @escaping @Sendable () -> Date = Date.init) {
        self.label = label
        self.total = total
        self.display = display
        self.interactive = display.columns() != nil
        self.clock = clock
        self.started = clock()
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
        let now = clock()
        let current = min(total, done.values.reduce(0, +))
        let fraction = total > 0 ? Double(current) / Double(total) : 1
        let elapsed = max(now.timeIntervalSince(started), 0.001)
        let rate = Double(current) / elapsed
        let eta = rate > 0 ? Double(total - current) / rate : 0
        if interactive {
            guard final || now.timeIntervalSince(lastDrawn) >= 0.1 else { return }
            lastDrawn = now
            let line = ProgressLine.bar(label: label, fraction: fraction, rate: rate, eta: eta,
                                        columns: display.columns() ?? 80)
            // \r back to the line's start, ESC[K clears what a longer line left.
            display.write("\r\(line)\u{1B}[K" + (final ? "\n" : ""))
        } else {
            let tenth = Int(fraction * 10)
            // The last line said 100 % already: the final one would repeat it.
            if final && tenth == 10 && lastTenth == 10 { return }
            guard final || tenth > lastTenth || now.timeIntervalSince(lastDrawn) >= 5 else { return }
            lastTenth = tenth
            lastDrawn = now
            display.write(ProgressLine.plain(label: label, fraction: fraction, current: current, total: total,
                                             rate: rate, eta: eta) + "\n")
        }
    }
}
