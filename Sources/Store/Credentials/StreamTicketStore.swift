import Foundation
import GRDB
import OpenSSLCrypto

/// One-time tickets for event-stream URLs (s4's `?ticket=`): a browser's
/// `EventSource` can't send a header, and a session token in a URL would
/// land in logs and history. A ticket is good for one resource, once, for a
/// short time; only its SHA-256 is stored. In the database, so a ticket made
/// by one worker process is redeemed by any other.
public struct StreamTicketStore: Sendable {
    let db: StoreDatabase

    /// What a redeemed ticket was issued for.
    public struct Ticket: Sendable, Equatable {
        public var username: String
        public var resource: String
        public var resourceType: String
    }

    /// Issues a ticket for `resource` and returns it.
    public func issue(username: String, resource: String, resourceType: String, lifetime: TimeInterval,
                      now: Date = Date()) throws -> String {
        let ticket = try SecureRandom.hex(byteCount: 32)
        try db.write { db in
            try db.execute(sql: "DELETE FROM minihost_s4_tickets WHERE expires_at < ?", arguments: [now])
            try db.execute(sql: """
                INSERT INTO minihost_s4_tickets (ticket_hash, username, resource, resource_type, expires_at)
                VALUES (?, ?, ?, ?, ?)
                """, arguments: [try Self.hash(ticket), username, resource, resourceType, now.addingTimeInterval(lifetime)])
        }
        return ticket
    }

    /// Deletes the ticket and returns what it was for, if it was live: a
    /// second redemption, even a concurrent one, finds nothing.
    public func redeem(_ ticket: String, now: Date = Date()) throws -> Ticket? {
        let hash = try Self.hash(ticket)
        return try db.write { db in
            guard let row = try Row.fetchOne(db, sql: """
                DELETE FROM minihost_s4_tickets WHERE ticket_hash = ?
                RETURNING username, resource, resource_type, expires_at
                """, arguments: [hash]) else { return nil }
            let expiresAt: Date = row["expires_at"]
            guard expiresAt > now else { return nil }
            return Ticket(username: row["username"], resource: row["resource"], resourceType: row["resource_type"])
        }
    }

    private static func hash(_ ticket: String) throws -> String {
        try SHA256Hasher.hexDigest(of: Array(ticket.utf8))
    }
}
