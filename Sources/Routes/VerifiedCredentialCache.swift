import Foundation
import Glibc
import OpenSSLCrypto
import Store

/// Remembers, for a short time, username + password pairs that passed scrypt,
/// so a script's check → init → finish sequence pays for one hash, not three.
///
/// Entries are keyed by HMAC-SHA256 under a random key that lives only in this
/// process: nothing kept here reveals a password, or can be tested against
/// guesses, without that key. Only successes are remembered, so every wrong
/// password still costs a full scrypt (and meets nginx's rate limit). A hit is
/// only a hint: the caller re-reads the account and accepts it only while the
/// stored hash is the one that verified and a secondary password is unrevoked
/// (``MinihostStore/revalidate(_:now:)``).
final class VerifiedCredentialCache: @unchecked Sendable {
    /// A zero lifetime turns the cache off.
    let lifetime: TimeInterval
    let capacity: Int
    private let key: [UInt8]
    private var mutex = pthread_mutex_t()
    private var entries: [[UInt8]: (account: VerifiedAccount, expires: Date)] = [:]

    init(lifetime: TimeInterval, capacity: Int = 4096) {
        self.lifetime = lifetime
        self.capacity = capacity
        // SecureRandom fails only if the kernel's CSPRNG does; a cache we
        // can't key safely is simply never consulted.
        key = (try? SecureRandom.bytes(32)) ?? []
        pthread_mutex_init(&mutex, nil)
    }

    deinit { pthread_mutex_destroy(&mutex) }

    private var isEnabled: Bool { lifetime > 0 && !key.isEmpty }

    private func entryKey(username: String, password: String) -> [UInt8]? {
        // The NUL keeps ("ab", "c") and ("a", "bc") apart; usernames can't contain one.
        try? HMACSHA256.authenticate(Array(username.utf8) + [0] + Array(password.utf8), key: key)
    }

    /// The account these exact credentials verified as within the lifetime.
    func account(username: String, password: String, now: Date = Date()) -> VerifiedAccount? {
        guard isEnabled, let entryKey = entryKey(username: username, password: password) else { return nil }
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        guard let entry = entries[entryKey] else { return nil }
        guard entry.expires > now else {
            entries[entryKey] = nil
            return nil
        }
        return entry.account
    }

    func remember(username: String, password: String, as account: VerifiedAccount, now: Date = Date()) {
        guard isEnabled, let entryKey = entryKey(username: username, password: password) else { return }
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if entries.count >= capacity {
            entries = entries.filter { $0.value.expires > now }
            // Still full of live entries: start over rather than grow without bound.
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
        }
        entries[entryKey] = (account, now.addingTimeInterval(lifetime))
    }

    /// Entries held, live or not yet swept.
    var count: Int {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return entries.count
    }

    /// Forgets these credentials (after a hit that no longer revalidates).
    func forget(username: String, password: String) {
        guard isEnabled, let entryKey = entryKey(username: username, password: password) else { return }
        pthread_mutex_lock(&mutex)
        entries[entryKey] = nil
        pthread_mutex_unlock(&mutex)
    }
}
