import Foundation
import OpenSSLCrypto
import Synchronization

/// Failed password checks per resource and client address: after
/// `attempts` failures an address is locked out of that resource for
/// `duration` (skysend's `POST /api/password/:id`, `/api/note/:id/password`).
///
/// Per resource and address, so one guesser doesn't lock others out of a
/// file, nor a typo everyone behind a NAT. Addresses are kept only as an
/// HMAC under a key that lives in this process's memory. The map is bounded:
/// past `capacity` entries the stale ones go, then the oldest.
/// Per worker process: with `--processes N` an address gets N × `attempts`.
final class PasswordLockout: Sendable {
    private struct Entry {
        var failures: Int
        var lockedUntil: Date?
        var lastFailure: Date
    }

    let attempts: Int
    let duration: TimeInterval
    private let capacity: Int
    private let key: [UInt8]
    private let entries = Mutex<[String: Entry]>([:])

    init(attempts: Int, duration: TimeInterval, capacity: Int = 100_000) {
        self.attempts = attempts
        self.duration = duration
        self.capacity = capacity
        key = (try? SecureRandom.bytes(32)) ?? Array(repeating: 0, count: 32)
    }

    private func entryKey(_ resource: String, _ address: String) -> String {
        let mac = (try? HMACSHA256.authenticate(Array(address.utf8), key: key)).map { Hex.encode($0) } ?? address
        return resource + ":" + mac
    }

    /// Seconds until `address` may try `resource` again, or nil if it may now.
    func retryAfter(_ resource: String, _ address: String, now: Date = Date()) -> Int? {
        let key = entryKey(resource, address)
        return entries.withLock { entries in
            guard let until = entries[key]?.lockedUntil else { return nil }
            guard now < until else {
                entries[key] = nil
                return nil
            }
            return Int(until.timeIntervalSince(now).rounded(.up))
        }
    }

    func recordFailure(_ resource: String, _ address: String, now: Date = Date()) {
        let key = entryKey(resource, address)
        entries.withLock { entries in
            if entries.count >= capacity && entries[key] == nil { prune(&entries, now: now) }
            var entry = entries[key] ?? Entry(failures: 0, lockedUntil: nil, lastFailure: now)
            entry.failures += 1
            entry.lastFailure = now
            if entry.failures >= attempts { entry.lockedUntil = now.addingTimeInterval(duration) }
            entries[key] = entry
        }
    }

    func recordSuccess(_ resource: String, _ address: String) {
        let key = entryKey(resource, address)
        entries.withLock { $0[key] = nil }
    }

    private func prune(_ entries: inout [String: Entry], now: Date) {
        entries = entries.filter { _, entry in
            entry.lockedUntil.map { now < $0 } ?? (now.timeIntervalSince(entry.lastFailure) < duration)
        }
        while entries.count >= capacity, let oldest = entries.min(by: { $0.value.lastFailure < $1.value.lastFailure }) {
            entries[oldest.key] = nil
        }
    }
}
