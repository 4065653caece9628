import Foundation

/// The text of a progress display: the redrawn terminal line, fitted to the
/// terminal's width, and the plain line for logs.
///
/// A redrawn line must fit: a line wider than the terminal wraps, and the next
/// `\r` redraws only its last row, so every redraw leaves a stale row behind.
enum ProgressLine {
    /// The widest bar drawn, and the narrowest worth drawing.
    static let barWidth = 30, narrowestBar = 10
    /// A label is shortened to no fewer columns than this before the bar goes.
    static let narrowestLabel = 8

    /// `label [#####-----] 42% 3.9 MB/s ETA 00:12` in at most `columns - 1`
    /// columns (writing the last column makes some terminals wrap early).
    /// The label is shortened in the middle (its end, often the extension,
    /// stays), then the bar narrows, then goes.
    static func bar(label: String, fraction: Double, rate: Double, eta: Double, columns: Int) -> String {
        let room = max(columns - 1, 1)
        let label = TerminalText.safe(label)
        let stats = "\(Int(fraction * 100))% \(size(rate))/s ETA \(clock(eta))"
        let decoration = 4  // " [" and "] "
        let fixed = stats.count + decoration
        let labelRoom = room - fixed - narrowestBar
        if labelRoom >= min(width(of: label), narrowestLabel) {
            let shown = shortened(label, to: labelRoom)
            let bar = min(barWidth, room - fixed - width(of: shown))
            let filled = Int(fraction * Double(bar))
            return "\(shown) [\(String(repeating: "#", count: filled))\(String(repeating: "-", count: bar - filled))] \(stats)"
        }
        let withoutBar = room - stats.count - 1
        if withoutBar >= min(width(of: label), narrowestLabel) {
            return "\(shortened(label, to: withoutBar)) \(stats)"
        }
        return String(stats.prefix(room))
    }

    /// The plain line printed every 10 % where standard error is no terminal.
    static func plain(label: String, fraction: Double, current: Int64, total: Int64, rate: Double, eta: Double) -> String {
        "\(TerminalText.safe(label)): \(Int(fraction * 100))% (\(size(Double(current))) of \(size(Double(total)))), "
            + "\(size(rate))/s, ETA \(clock(eta))"
    }

    /// Columns `text` takes: two for East Asian wide characters and emoji
    /// (the ranges wcwidth gives two), one for anything else.
    static func width(of text: String) -> Int {
        text.reduce(0) { $0 + width(of: $1) }
    }

    private static func width(of character: Character) -> Int {
        switch character.unicodeScalars.first?.value ?? 0 {
        case 0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xA000...0xA4CF,
             0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60, 0xFFE0...0xFFE6,
             0x1F300...0x1F64F, 0x1F900...0x1F9FF, 0x20000...0x3FFFD: 2
        default: 1
        }
    }

    /// `text` in at most `columns` columns: its start and end around `…`,
    /// the end getting the larger half (it holds the extension and any number).
    static func shortened(_ text: String, to columns: Int) -> String {
        guard width(of: text) > columns else { return text }
        guard columns > 1 else { return String(repeating: "…", count: max(columns, 0)) }
        let characters = Array(text)
        let budget = columns - 1
        var tail = 0, tailWidth = 0
        while tail < characters.count, tailWidth + width(of: characters[characters.count - 1 - tail]) <= budget - budget / 2 {
            tailWidth += width(of: characters[characters.count - 1 - tail])
            tail += 1
        }
        var head = 0, headWidth = 0
        while head < characters.count - tail, headWidth + width(of: characters[head]) <= budget - tailWidth {
            headWidth += width(of: characters[head])
            head += 1
        }
        return String(characters[..<head]) + "…" + String(characters[(characters.count - tail)...])
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
