import OpenSSLCrypto
import Synchronization

/// API clients this process has authenticated, so the next request with the
/// same credential skips the SQLite read. The presented secret's SHA-256 is
/// still compared, with the stored one, so memory holds no secret.
///
/// An entry counts only while ``CredentialGeneration`` holds the value it was
/// stamped with: any change to any client, by any process, ends every entry at
/// once. Only successes are kept, so a wrong secret always takes the full path
/// (and its time), and the map can't grow past the number of valid
/// credentials (bounded anyway, against a store with very many clients).
///
/// Each worker thread keeps its own map: one shared lock, taken on every
/// request by 128 threads, showed up in the download profile as futex waits.
/// Behind them is one shared map, consulted only when a thread's own misses:
/// the kernel hands each FastCGI connection to the thread idle longest, so a
/// client sending requests one after another (a tus upload's `PATCH`es)
/// meets a thread that has not seen it yet on almost every request.
final class AuthenticatedClients: Sendable {
    private struct Entry: Sendable {
        let client: APIClient
        let generation: Int64
    }

    private static let limit = 4096
    let generation: CredentialGeneration
    private final class Entries {
        var byKey: [String: Entry] = [:]
    }

    private let entries = PerThread { Entries() }
    private let shared = Mutex<[String: Entry]>([:])

    init(generation: CredentialGeneration) {
        self.generation = generation
    }

    /// The remembered client for this key, if the presented secret hashes to
    /// its stored hash (compared in constant time) and nothing changed since.
    func client(key: String, presentedHash: String, current: Int64) -> APIClient? {
        let own = try? entries.get()
        var entry = own?.byKey[key]
        if entry?.generation != current {
            entry = shared.withLock { $0[key] }
            if let entry, entry.generation == current { own.map { Self.store(entry, key: key, in: &$0.byKey) } }
        }
        guard let entry, entry.generation == current,
              constantTimeEquals(Array(presentedHash.utf8), Array(entry.client.secretHash.utf8)) else { return nil }
        return entry.client
    }

    func remember(_ client: APIClient, stampedWith generation: Int64) {
        let entry = Entry(client: client, generation: generation)
        if let own = try? entries.get() { Self.store(entry, key: client.clientKey, in: &own.byKey) }
        shared.withLock { Self.store(entry, key: client.clientKey, in: &$0) }
    }

    private static func store(_ entry: Entry, key: String, in map: inout [String: Entry]) {
        if map.count >= limit && map[key] == nil { map.removeAll(keepingCapacity: true) }
        map[key] = entry
    }
}
