import Foundation
import GRDB
import OpenSSLCrypto

/// What a skysend upload declared in its headers, kept with its upload
/// session until finalize (the session's options, as JSON).
public struct SkysendUploadTerms: Codable, Sendable, Equatable {
    public var authTokenHash: String
    public var ownerTokenHash: String
    /// base64url, 16 bytes.
    public var salt: String
    public var fileCount: Int
    public var maxDownloads: Int
    public var expireSeconds: Int
    public var passwordSalt: String?
    public var passwordAlgo: String?

    public init(authTokenHash: String, ownerTokenHash: String, salt: String, fileCount: Int, maxDownloads: Int,
                expireSeconds: Int, passwordSalt: String?, passwordAlgo: String?) {
        self.authTokenHash = authTokenHash
        self.ownerTokenHash = ownerTokenHash
        self.salt = salt
        self.fileCount = fileCount
        self.maxDownloads = maxDownloads
        self.expireSeconds = expireSeconds
        self.passwordSalt = passwordSalt
        self.passwordAlgo = passwordAlgo
    }
}

/// The skysend dialect's attributes of an upload (`minihost_skysend_files`).
public struct SkysendFileAttributes: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "minihost_skysend_files"

    public var uploadId: String
    public var authTokenHash: String
    public var ownerTokenHash: String
    public var salt: String
    public var fileCount: Int
    public var passwordSalt: String?
    public var passwordAlgo: String?
    public var encryptedMeta: Data?
    public var metaNonce: Data?

    enum CodingKeys: String, CodingKey {
        case uploadId = "upload_id", authTokenHash = "auth_token_hash", ownerTokenHash = "owner_token_hash", salt
        case fileCount = "file_count", passwordSalt = "password_salt", passwordAlgo = "password_algo"
        case encryptedMeta = "encrypted_meta", metaNonce = "meta_nonce"
    }
}

/// A skysend file: the core upload (ciphertext; its public id is the id the
/// client knows) and its attributes.
public struct SkysendFile: Sendable, Equatable {
    public var upload: Upload
    public var attributes: SkysendFileAttributes
    public var id: String { upload.publicId ?? upload.id }
}

/// The skysend dialect's files. Every one arrives through a core upload
/// session (durable: a restart loses no acknowledged chunk), and the id the
/// client gets at init names the session, then the finished upload.
public struct SkysendFileStore: Sendable {
    let store: MinihostStore

    public static let owner = Owner(kind: .skysend, id: "skysend")

    public func openSession(_ terms: SkysendUploadTerms, declaredSize: Int64, maxSize: Int64,
                            lifetime: TimeInterval) throws -> UploadSession {
        return try store.openSession(SessionRequest(owner: Self.owner, fileName: Self.fileName, contentType: Self.contentType,
                                                    declaredSize: declaredSize,
                                                    options: try UploadSession.encodeOptions(terms)),
                                     maxSize: maxSize, lifetime: lifetime)
    }

    /// The terms an open session was started with, or nil for another dialect's session.
    public func terms(of session: UploadSession) -> SkysendUploadTerms? {
        guard session.owner == Self.owner else { return nil }
        return session.decodedOptions(as: SkysendUploadTerms.self)
    }

    /// Bytes acknowledged so far.
    public func receivedBytes(ofSession id: String) throws -> Int64 {
        try store.chunks(ofSession: id).reduce(0) { $0 + $1.size }
    }

    /// Finishes a session into a file whose public id is the session's id;
    /// the expiry starts now. nil while another call is finishing it.
    public func finish(sessionId: String, terms: SkysendUploadTerms, now: Date = Date()) throws -> SkysendFile? {
        let outcome = try store.finishSession(id: sessionId, owner: Self.owner, now: now, configure: { upload in
            Self.apply(terms, publicId: sessionId, now: now, to: &upload)
        }, attach: { db, upload in
            try Self.attributes(terms, uploadId: upload.id).insert(db)
        })
        switch outcome {
        case .inProgress: return nil
        case .completed(let upload): return try file(id: upload.publicId ?? sessionId)
        }
    }

    /// Records a file received in one request (`POST /api/upload`) under a
    /// new id: row, attributes and blob in one transaction, or nothing.
    public func commit(_ blob: CompletedBlob, terms: SkysendUploadTerms, now: Date = Date()) throws -> SkysendFile {
        let id = try SecureRandom.hex(byteCount: 16)
        let upload = try store.commitUpload(blob, owner: Self.owner, fileName: Self.fileName, contentType: Self.contentType,
                                            now: now, configure: { Self.apply(terms, publicId: id, now: now, to: &$0) },
                                            alsoInTransaction: { db, upload in
            try Self.attributes(terms, uploadId: upload.id).insert(db)
        })
        return SkysendFile(upload: upload, attributes: Self.attributes(terms, uploadId: upload.id))
    }

    /// Ciphertext: the real name and type are inside the encrypted metadata.
    static let fileName = "skysend.bin"
    static let contentType = "application/octet-stream"

    private static func apply(_ terms: SkysendUploadTerms, publicId: String, now: Date, to upload: inout Upload) {
        upload.publicId = publicId
        upload.maxDownloads = terms.maxDownloads
        upload.expiresAt = now.addingTimeInterval(TimeInterval(terms.expireSeconds))
    }

    private static func attributes(_ terms: SkysendUploadTerms, uploadId: String) -> SkysendFileAttributes {
        SkysendFileAttributes(
            uploadId: uploadId, authTokenHash: terms.authTokenHash, ownerTokenHash: terms.ownerTokenHash, salt: terms.salt,
            fileCount: terms.fileCount, passwordSalt: terms.passwordSalt, passwordAlgo: terms.passwordAlgo,
            encryptedMeta: nil, metaNonce: nil)
    }

    /// A ready skysend file by the id the client knows (ended ones included:
    /// the caller decides what an ended file answers).
    public func file(id: String) throws -> SkysendFile? {
        try store.db.read { db in
            guard let upload = try Upload.fetchOne(db, sql: """
                SELECT * FROM minihost_uploads WHERE public_id = ? AND owner_kind = ? AND state = 'ready'
                """, arguments: [id, Self.owner.kind.rawValue]),
                  let attributes = try SkysendFileAttributes.fetchOne(db, key: upload.id) else { return nil }
            return SkysendFile(upload: upload, attributes: attributes)
        }
    }

    /// Stores the encrypted metadata once; false if it was already set.
    public func setMetadata(_ file: SkysendFile, encrypted: Data, nonce: Data) throws -> Bool {
        try store.db.write { db in
            try db.execute(sql: """
                UPDATE minihost_skysend_files SET encrypted_meta = ?, meta_nonce = ? WHERE upload_id = ? AND encrypted_meta IS NULL
                """, arguments: [encrypted, nonce, file.upload.id])
            return db.changesCount == 1
        }
    }

    /// Purges the file (its blob goes when nothing else references it).
    public func delete(_ file: SkysendFile, now: Date = Date()) throws {
        try store.writeReleasingBlobs { db, released in
            guard let upload = try Upload.fetchOne(db, key: file.upload.id), upload.state == .ready else { return }
            try store.purgeRow(upload, now: now, db, into: &released)
        }
    }
}

extension MinihostStore {
    /// The skysend dialect's files.
    public var skysendFiles: SkysendFileStore { SkysendFileStore(store: self) }
}
