import Foundation
import GRDB
import OpenSSLCrypto

/// API clients of the minihost dialect: `client_key.secret`, with only the
/// secret's SHA-256 at rest.
public struct APIClientStore: Sendable {
    let db: StoreDatabase
    let authenticated: AuthenticatedClients

    public static let scopes = ["upload", "download", "publish"]

    /// Creates an API client and returns its secret, which is shown once and
    /// stored only as a SHA-256 hash.
    public func create(key: String, scopes: [String]) throws -> String {
        guard AccountName.isValid(key) else {
            throw StorageError(.invalid, "client key must be 1-64 characters of A-Z a-z 0-9 _ -")
        }
        let unknown = scopes.filter { !Self.scopes.contains($0) }
        guard unknown.isEmpty, !scopes.isEmpty else {
            throw StorageError(.invalid, "scopes must be some of \(Self.scopes.joined(separator: ",")); got \(scopes.joined(separator: ","))")
        }
        let secret = try SecureRandom.hex(byteCount: 32)
        let client = APIClient(clientKey: key, secretHash: try SHA256Hasher.hexDigest(of: Array(secret.utf8)),
                               scopes: Self.scopes.filter(scopes.contains).joined(separator: ","),
                               active: true, createdAt: Date(), revokedAt: nil)
        try db.write { db in
            guard try APIClient.fetchOne(db, key: key) == nil else {
                throw StorageError(.invalid, "client \(key) already exists")
            }
            try client.insert(db)
            try authenticated.generation.advance(db)
        }
        return secret
    }

    public func list() throws -> [APIClient] {
        try db.read { try APIClient.order(Column("client_key")).fetchAll($0) }
    }

    /// Deactivates a client; its uploads stay. Returns false for an unknown key.
    public func revoke(key: String) throws -> Bool {
        try db.write { db in
            guard var client = try APIClient.fetchOne(db, key: key) else { return false }
            client.active = false
            client.revokedAt = Date()
            try client.update(db)
            try authenticated.generation.advance(db)
            return true
        }
    }

    /// The active client whose secret this is, or nil. Unknown keys, revoked
    /// clients and wrong secrets take the same path and the same time.
    /// A success is remembered until any client changes (``AuthenticatedClients``).
    public func authenticate(key: String, secret: String) throws -> APIClient? {
        // Read before the row: a stamp from a row read before a change can
        // then never equal what the file holds after it.
        let current = authenticated.generation.current()
        let presented = try SHA256Hasher.hexDigest(of: Array(secret.utf8))
        if let remembered = authenticated.client(key: key, presentedHash: presented, current: current) {
            return remembered
        }
        let found = try db.readSingleStatement { db -> (APIClient, Int64)? in
            let statement = try db.cachedStatement(sql: """
                SELECT c.*, g.value AS credential_generation
                FROM minihost_api_clients c JOIN minihost_credential_generation g ON g.id = 1
                WHERE c.client_key = ?
                """)
            return try Row.fetchOne(statement, arguments: [key]).map { (try APIClient(row: $0), $0["credential_generation"]) }
        }
        let expected = found?.0.secretHash ?? Self.decoyHash
        let matches = constantTimeEquals(Array(presented.utf8), Array(expected.utf8))
        guard let (client, generation) = found, matches, client.active else { return nil }
        authenticated.remember(client, stampedWith: generation)
        return client
    }

    private static let decoyHash = String(repeating: "0", count: 64)
}

/// Names for clients, operators and users: safe in a credential, a log line and a path segment.
enum AccountName {
    static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        return (1...64).contains(bytes.count) && bytes.allSatisfy {
            ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 95
        }
    }
}
