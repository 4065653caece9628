import Glibc

/// Names a process uniquely on this machine across reboots and pid reuse:
/// `<boot id>:<pid>:<start time in clock ticks>`. A finish claim records the
/// claiming process, so a later finish can tell a claim whose process died
/// (take over at once) from one still at work (wait).
enum ProcessIdentity {
    static let current: String = {
        let pid = getpid()
        return "\(bootId):\(pid):\(startTime(of: pid) ?? "?")"
    }()

    /// False only when the claim is provably dead: this machine's boot, and
    /// its pid gone or reused. Anything unreadable counts as alive, so a claim
    /// is never taken from a process that may still be writing.
    static func isAlive(_ identity: String) -> Bool {
        let parts = identity.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, String(parts[0]) == bootId, let pid = Int32(parts[1]), parts[2] != "?" else { return true }
        if kill(pid, 0) != 0 && errno == ESRCH { return false }
        guard let started = startTime(of: pid) else { return true }
        return started == String(parts[2])
    }

    private static let bootId: String = {
        (read("/proc/sys/kernel/random/boot_id") ?? "unknown").filter { $0 != "\n" }
    }()

    /// Field 22 of /proc/PID/stat, counted after the parenthesised name
    /// (which may itself hold spaces and parentheses).
    private static func startTime(of pid: Int32) -> String? {
        guard let stat = read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? String(fields[19]) : nil
    }

    private static func read(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = Glibc.read(descriptor, &buffer, buffer.count)
        return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : nil
    }
}
