import Foundation
import GRDB
import Logging
import OpenSSLCrypto

/// SQLite metadata plus the blob store: the one place that decides what is
/// stored. It knows nothing of HTTP; every dialect's routes call into it.
///
/// Safe to share between worker threads: GRDB's `DatabasePool` serialises
/// writes and lets reads run side by side (WAL).
public final class MinihostStore: Sendable {
    public let directory: DataDirectory
    public let blobs: BlobStore
    public let publicTree: PublicTree
    public let configuration: StoreConfiguration
    let db: StoreDatabase
    /// Coordinates chunks written in place (see ``ChunkWriter``).
    let sessionFiles: SessionFileRegistry
    /// API clients this process has authenticated (see ``AuthenticatedClients``).
    let authenticatedClients: AuthenticatedClients
    let logger = Logger(label: "minihost.store")

    /// Opens (creating if needed) the data folder and brings the schema up to date.
    public init(directory: DataDirectory, configuration: StoreConfiguration = StoreConfiguration()) throws {
        self.directory = directory
        self.configuration = configuration
        try directory.create()
        // A process that crashed (not the machine) may have left renames and
        // new folders in the page cache only; later writers would find them
        // and not sync them again. One syncfs at start makes them durable.
        try FileSystem.syncFileSystem(containing: directory.root)
        db = try StoreDatabase(directory: directory, configuration: configuration)
        blobs = BlobStore(directory: directory)
        publicTree = PublicTree(directory: directory)
        sessionFiles = SessionFileRegistry(sessionsPath: directory.sessionsPath)
        authenticatedClients = AuthenticatedClients(
            generation: try CredentialGeneration(path: directory.credentialGenerationPath))
        try reconcileCredentialGeneration()
    }

    /// A change whose transaction rolled back after the file moved leaves the
    /// file ahead of the database, and remembered clients would never count
    /// again; bringing both to one value at open ends that.
    private func reconcileCredentialGeneration() throws {
        let generation = authenticatedClients.generation
        let stored = try db.read {
            try Int64.fetchOne($0, sql: "SELECT value FROM minihost_credential_generation WHERE id = 1")
        }
        guard stored != generation.current() else { return }
        try db.write { try generation.advance($0) }
    }

    /// Closes the read connections no read is using, for a server that
    /// went quiet; the next read opens one again. Returns how many it closed.
    @discardableResult
    public func closeIdleReaders() -> Int { db.closeIdleReaders() }

    /// What a server that went quiet can give back: idle read connections
    /// and the upload buffers kept for the next upload (``UploadBuffers``).
    public func releaseIdleMemory() {
        closeIdleReaders()
        UploadBuffers.shared.release()
    }

    // The stores beside the core, one per kind of credential or owner, and
    // one per dialect that keeps attributes of its own. Each is a view over
    // the same database.

    /// API clients of the minihost dialect (`client_key.secret`).
    public var clients: APIClientStore { APIClientStore(db: db, authenticated: authenticatedClients) }
    /// Accounts: users, their folders and secondary passwords (plain dialect).
    public var accounts: AccountStore { AccountStore(db: db) }
    /// Operators and their sign-in sessions.
    public var operators: OperatorStore { OperatorStore(db: db) }
    /// The audit log.
    public var audit: AuditLog { AuditLog(db: db) }
    /// The plain dialect's uploads: its attributes beside the core's rows.
    public var plainUploads: PlainUploadStore { PlainUploadStore(store: self) }

    /// The writer pool, for tests that write rows directly.
    var database: DatabasePool { db.pool }

    #if DEBUG
    /// Tests only: runs while a released blob is about to be unlinked, to
    /// prove another writer can't slip in between the check and the unlink.
    nonisolated(unsafe) static var beforeBlobUnlink: ((String) -> Void)?
    #endif

    func read<T>(_ body: (Database) throws -> T) throws -> T { try db.read(body) }
    func readSingleStatement<T>(_ body: (Database) throws -> T) throws -> T { try db.readSingleStatement(body) }
    func write<T>(_ body: (Database) throws -> T) throws -> T { try db.write(body) }
    func writeImmediately<T>(_ body: (Database) throws -> T) throws -> T { try db.writeImmediately(body) }

    /// What a transaction let go of, for ``writeReleasingBlobs(_:)`` to finish after the commit.
    struct Released {
        /// Blob hashes rows stopped referencing.
        var blobs: Set<String> = []
        /// Whether a link in the public tree was removed.
        var unlinkedPublicFile = false
    }

    /// Runs `body` in an IMMEDIATE transaction; the blob hashes it adds to
    /// `released` (rows that stopped referencing them) are deleted after the
    /// commit if nothing references them any more, and if it removed a public
    /// link, this returns only once nginx can no longer serve it.
    ///
    /// The check and the unlink run in a second IMMEDIATE transaction: holding
    /// only this process's writer connection is not enough, because another
    /// process (`minihost gc`, a second worker process) may commit an upload
    /// that reuses the blob in between. A crash between the two transactions
    /// leaves an unreferenced blob, which gc removes.
    func writeReleasingBlobs<T>(_ body: (Database, inout Released) throws -> T) throws -> T {
        var released = Released()
        let result = try writeImmediately { db in try body(db, &released) }
        if released.unlinkedPublicFile { waitOutUnlinkGrace() }
        guard !released.blobs.isEmpty else { return result }
        do {
            try writeImmediately { db in
                for hash in released.blobs where try Upload.filter(Column("blob") == hash).fetchCount(db) == 0 {
                    #if DEBUG
                    Self.beforeBlobUnlink?(hash)
                    #endif
                    blobs.remove(hash)
                }
            }
        } catch {
            // The rows are committed; an unreleased blob is only garbage.
            logger.warning("blob release deferred to gc", metadata: ["error": "\(error)"])
        }
        return result
    }

    /// Blocks for as long as nginx may still serve a public link removed
    /// before this call (see ``PublicTree``).
    func waitOutUnlinkGrace() {
        let grace = configuration.unlinkGrace
        guard grace > .zero else { return }
        Thread.sleep(forTimeInterval: Double(grace.components.seconds) + Double(grace.components.attoseconds) / 1e18)
    }
}

/// How the store is set up: the bounds it enforces whatever a dialect asks
/// for, so no input can make it do unbounded work (least of all under the
/// write lock), and how durable a commit is.
public struct StoreConfiguration: Sendable {
    /// The most chunks one resumable upload may have; a chunk index must be
    /// below this (and below the declared size, since no chunk is empty).
    public var maxChunksPerSession: Int64
    /// How many missing chunk indices an error names (the rest are counted).
    public var missingChunksNamed: Int
    /// Sync SQLite's WAL at every commit (`synchronous=FULL`). Off, a power
    /// cut may roll back the last acknowledged uploads' rows, and gc then
    /// deletes their blobs: only for measuring what FULL costs.
    public var synchronousCommits: Bool
    /// How long an unpublish waits after removing a public link before it
    /// returns: ``PublicTree/unlinkGrace`` wherever nginx serves the tree;
    /// zero only in tests without nginx.
    public var unlinkGrace: Duration
    /// How long a chunk written in place waits for the one before it, still
    /// being written, so it can hash its bytes as they are written instead
    /// of having them read back (``SessionFileState/awaitHash(reaching:after:limit:)``).
    /// Zero never waits.
    public var chunkHashWait: Duration

    public init(maxChunksPerSession: Int64 = 10_000, missingChunksNamed: Int = 20, synchronousCommits: Bool = true,
                unlinkGrace: Duration = PublicTree.unlinkGrace, chunkHashWait: Duration = .seconds(1)) {
        self.maxChunksPerSession = max(1, maxChunksPerSession)
        self.missingChunksNamed = max(1, missingChunksNamed)
        self.synchronousCommits = synchronousCommits
        self.unlinkGrace = max(.zero, unlinkGrace)
        self.chunkHashWait = max(.zero, chunkHashWait)
    }
}

/// Times as the JSON APIs show them: `2026-04-17T12:00:00.000Z`.
public enum ISO8601Timestamp {
    public static func format(_ date: Date) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        append(date, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The same text appended as UTF-8 bytes, for answers written byte by
    /// byte (an s4 listing writes one per object).
    public static func append(_ date: Date, to bytes: inout [UInt8]) {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        let millis = ((milliseconds % 1000) + 1000) % 1000
        // Rounded down, so a time before 1970 isn't a second late.
        var seconds = time_t((milliseconds - millis) / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        // Written digit by digit: a listing formats one per object.
        func field(_ value: Int64, _ width: Int, then separator: Unicode.Scalar) {
            if value < 0 { bytes.append(UInt8(ascii: "-")) }
            let magnitude = abs(value)
            var divisor: Int64 = 1
            var count = 1
            while magnitude / divisor >= 10 { divisor *= 10; count += 1 }
            for _ in count..<max(count, width) { bytes.append(UInt8(ascii: "0")) }
            while divisor > 0 {
                bytes.append(UInt8(ascii: "0") + UInt8(magnitude / divisor % 10))
                divisor /= 10
            }
            bytes.append(UInt8(separator.value))
        }
        field(Int64(parts.tm_year) + 1900, 4, then: "-")
        field(Int64(parts.tm_mon) + 1, 2, then: "-")
        field(Int64(parts.tm_mday), 2, then: "T")
        field(Int64(parts.tm_hour), 2, then: ":")
        field(Int64(parts.tm_min), 2, then: ":")
        field(Int64(parts.tm_sec), 2, then: ".")
        field(millis, 3, then: "Z")
    }

    /// Parses ISO-8601 date-times with or without fractional seconds, with `Z`
    /// or an offset; nil for anything else (including a bare date).
    public static func parse(_ text: String) -> Date? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard trimmed.count >= 20, trimmed.count <= 40 else { return nil }
        for options: ISO8601DateFormatter.Options in [
            [.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime],
        ] {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = options
            if let date = formatter.date(from: trimmed) { return date }
        }
        return nil
    }
}
