import ArgumentParser
import Foundation
import Store

/// `minihost status`: what a data folder holds and how its upkeep is going,
/// for a person at a terminal (the same figures as the metrics).
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Print a short summary of a data folder: uploads, bytes, sessions, last gc, disk free.")
    @OptionGroup var dataOptions: DataOptions

    func run() throws {
        let directory = DataDirectory(dataOptions.data)
        guard directory.exists else { throw CommandFailure("no minihost data folder at \(dataOptions.data)") }
        let store = try dataOptions.openStore()
        let statistics = try store.statistics()
        let disk = try directory.diskSpace()
        let now = Date()
        print("data folder   \(directory.root)")
        print("uploads       \(statistics.uploads) ready, \(Self.bytes(statistics.uploadBytes))")
        print("stored blobs  \(statistics.blobObjects), \(Self.bytes(statistics.blobBytes)) (identical files stored once)")
        print("sessions      \(statistics.uploadSessionsOpen) resumable upload(s) open")
        for totals in statistics.maintenance {
            let last = totals.lastRunAt.map { "last \(Self.ago($0, now))" } ?? "never run"
            switch totals.task {
            case .gc:
                print("gc            \(last), \(totals.runs) run(s): \(totals.removed.blobsRemoved) blob(s) and "
                      + "\(Self.bytes(totals.removed.bytesFreed)) freed, \(totals.removed.sessionsExpired) session(s) expired, "
                      + "\(totals.removed.uploadsEnded) ended upload(s) and note(s) removed")
            case .sweeper:
                print("sweeper       \(last), \(totals.removed.temporaryFilesRemoved) leftover temporary file(s) and "
                      + "\(totals.removed.uploadsEnded) ended upload(s) and note(s) removed")
            }
        }
        let share = disk.total > 0 ? Double(disk.free) / Double(disk.total) * 100 : 0
        print("disk free     \(Self.bytes(disk.free)) of \(Self.bytes(disk.total)) (\(String(format: "%.0f", share))%)")
    }

    /// `1.5 GB`, in powers of 1000 like `df -H`.
    static func bytes(_ count: Int64) -> String {
        let units = ["bytes", "kB", "MB", "GB", "TB", "PB"]
        var value = Double(count)
        var unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(count) bytes" : String(format: "%.1f", value) + " " + units[unit]
    }

    static func ago(_ date: Date, _ now: Date) -> String {
        let seconds = Int(now.timeIntervalSince(date))
        switch seconds {
        case ..<60: return "\(max(0, seconds)) s ago"
        case ..<3600: return "\(seconds / 60) min ago"
        case ..<86_400: return "\(seconds / 3600) h ago"
        default: return "\(seconds / 86_400) days ago"
        }
    }
}
