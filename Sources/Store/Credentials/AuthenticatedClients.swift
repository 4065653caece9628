import OpenSSLCrypto

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
final class AuthenticatedClients: Sendable {
    private struct Entry {
        let client: APIClient
        let generation: Int64
    }

    private static let limit = 4096
    let generation: CredentialGeneration
    private final class Entries {
        var byKey: [String: Entry] = [:]
    }

    private let entries = PerThread { Entries() }

    init(generation: CredentialGeneration) {
        self.generation = generation
    }

    /// The remembered client for this key, if the presented secret hashes to
    /// its stored hash (compared in constant time) and nothing changed since.
    func client(key: String, presentedHash: String, current: Int64) -> APIClient? {
        guard let entry = try? entries.get().byKey[key], entry.generation == current,
              constantTimeEquals(Array(presentedHash.utf8), Array(entry.client.secretHash.utf8)) else { return nil }
        return entry.client
    }

    func remember(_ client: APIClient, stampedWith generation: Int64) {
        guard let entries = try? entries.get() else { return }
        if entries.byKey.count >= Self.limit { entries.byKey.removeAll(keepingCapacity: true) }
        entries.byKey[client.clientKey] = Entry(client: client, generation: generation)
    }
}
