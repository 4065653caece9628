import Foundation
import Testing
@testable import TransferClient

@Suite struct ProgressLineTests {
    static let longName = "a-rather-long-file-name-for-the-holiday-photos-2026.tar"

    @Test func aLineNeverReachesTheTerminalsLastColumn() {
        for label in ["x", "notes.txt", Self.longName, "写真の旅行アルバム二〇二六年の夏休み.zip", String(repeating: "é", count: 90)] {
            for columns in [1, 12, 20, 30, 45, 60, 80, 132, 200] {
                for fraction in [0, 0.5, 1.0] {
                    let line = ProgressLine.bar(label: label, fraction: fraction, rate: 3_900_000, eta: 754, columns: columns)
                    #expect(ProgressLine.width(of: line) <= max(columns - 1, 1), "\(columns) columns: \(line)")
                }
            }
        }
    }

    @Test func aWideTerminalShowsTheWholeLabelAndAFullBar() {
        let line = ProgressLine.bar(label: "notes.txt", fraction: 0.5, rate: 1_000_000, eta: 10, columns: 120)
        #expect(line == "notes.txt [###############---------------] 50% 1.0 MB/s ETA 00:10")
    }

    @Test func aLongLabelIsShortenedInTheMiddleBeforeTheBarNarrows() {
        let line = ProgressLine.bar(label: Self.longName, fraction: 0.25, rate: 2_000_000, eta: 65, columns: 60)
        #expect(line.hasPrefix("a-rather") && line.contains("2026.tar [") && line.contains("…"))
        #expect(line.hasSuffix("] 25% 2.0 MB/s ETA 01:05"))
        let bar = line.split(separator: "[")[1].split(separator: "]")[0]
        #expect(bar.count == ProgressLine.narrowestBar)
    }

    @Test func aNarrowTerminalDropsTheBarThenTheLabel() {
        #expect(ProgressLine.bar(label: "notes.txt", fraction: 1, rate: 1_000_000, eta: 0, columns: 40)
            == "notes.txt 100% 1.0 MB/s ETA 00:00")
        #expect(ProgressLine.bar(label: "notes.txt", fraction: 1, rate: 1_000_000, eta: 0, columns: 12) == "100% 1.0 MB")
    }

    @Test func shorteningKeepsBothEndsAndCountsWideCharactersTwice() {
        #expect(ProgressLine.shortened("abcdefghij", to: 10) == "abcdefghij")
        #expect(ProgressLine.shortened("abcdefghij", to: 6) == "ab…hij")
        #expect(ProgressLine.shortened("写真写真写真.zip", to: 9) == "写真….zip")
        #expect(ProgressLine.width(of: "…") == 1 && ProgressLine.width(of: "🎉") == 2)
        #expect(ProgressLine.width(of: "写真.zip") == 8)
    }

    @Test func aLabelCannotSteerTheTerminal() {
        #expect(TerminalText.safe("evil\u{1B}]0;owned\u{07}name\r.txt") == "evil?]0;owned?name?.txt")
        #expect(TerminalText.safe("photo\u{202E}gpj.exe") == "photo?gpj.exe")
        #expect(TerminalText.safe("\u{9B}31m") == "?31m")
        #expect(TerminalText.safe("one\u{2028}two\u{2029}") == "one?two?")
        #expect(TerminalText.safe("crème brûlée.txt") == "crème brûlée.txt")
        let line = ProgressLine.plain(label: "a\u{1B}b", fraction: 0.1, current: 100, total: 1000, rate: 50, eta: 18)
        #expect(line == "a?b: 10% (100 B of 1.0 KB), 50 B/s, ETA 00:18")
    }
}

/// Text written to a display, and a clock the test moves.
private final class Recorder: @unchecked Sendable {
    private let lock = NSLock()
    private var written: [String] = []
    private var now = Date(timeIntervalSince1970: 1_000_000)

    var writes: [String] { lock.withLock { written } }
    func write(_ text: String) { lock.withLock { written.append(text) } }
    func time() -> Date { lock.withLock { now } }
    func advance(_ seconds: Double) { lock.withLock { now += seconds } }
}

@Suite struct TransferProgressTests {
    @Test func aTerminalGetsOneRedrawnLineAtMostTenTimesASecond() {
        let recorder = Recorder()
        let display = TransferProgress.Display(write: { recorder.write($0) }, columns: { 50 })
        let progress = TransferProgress(label: ProgressLineTests.longName, total: 1000, display: display,
                                        clock: { recorder.time() })
        recorder.advance(1)
        progress.update(part: 0, bytes: 100)
        progress.update(part: 1, bytes: 100)  // within 0.1 s of the last: not drawn
        recorder.advance(0.5)
        progress.update(part: 1, bytes: 300)
        recorder.advance(0.5)
        progress.update(part: 0, bytes: 700)
        progress.finish()
        let writes = recorder.writes
        // 10 % drawn; 20 % too soon after it; 40 %; 100 %; and the final line.
        #expect(writes.count == 4)
        for write in writes {
            #expect(write.hasPrefix("\r"))
            let visible = write.dropFirst().replacingOccurrences(of: "\u{1B}[K", with: "").replacingOccurrences(of: "\n", with: "")
            #expect(ProgressLine.width(of: visible) <= 49, "\(visible)")
            #expect(!visible.contains("\n") && !visible.contains("\r"))
        }
        #expect(writes[0].contains(" 10% ") && writes[1].contains(" 40% ") && writes[2].contains(" 100% "))
        #expect(writes[3].hasSuffix("\u{1B}[K\n") && !writes[2].hasSuffix("\n"))
    }

    @Test func elsewhereAPlainLineEveryTenPercent() {
        let recorder = Recorder()
        let display = TransferProgress.Display(write: { recorder.write($0) }, columns: { nil })
        let progress = TransferProgress(label: "notes.txt", total: 1000, display: display, clock: { recorder.time() })
        for bytes in stride(from: 25, through: 1000, by: 25) {
            recorder.advance(0.01)
            progress.update(part: 0, bytes: Int64(bytes))
        }
        progress.finish()
        let writes = recorder.writes
        #expect(writes.allSatisfy { $0.hasPrefix("notes.txt: ") && $0.hasSuffix("\n") && !$0.contains("\r") })
        #expect(writes.map { $0.split(separator: " ")[1] } == ["2%", "10%", "20%", "30%", "40%", "50%", "60%", "70%", "80%",
                                                               "90%", "100%"])
    }
}
