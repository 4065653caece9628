import Foundation
import GRDB

extension MinihostStore {
    /// A number that changes whenever what is public changes (a publish, an
    /// unpublish, a purge, an upload with a public link): whoever indexes
    /// public files for nginx rebuilds its index when it moves.
    public func publicGeneration() throws -> Int64 {
        try readSingleStatement { db in
            try Int64.fetchOne(db.cachedStatement(sql: "SELECT value FROM minihost_public_generation WHERE id = 1")) ?? 0
        }
    }

    static func bumpPublicGeneration(_ db: Database) throws {
        try db.execute(sql: "UPDATE minihost_public_generation SET value = value + 1 WHERE id = 1")
    }

    /// Rows whose answer has a per-request condition are never linked (see ``PublicTree``).
    static let unconditional = "u.expires_at IS NULL AND u.max_downloads IS NULL AND u.password_hash IS NULL"

    /// Whether `upload` may be served from the public tree.
    static func isUnconditional(_ upload: Upload) -> Bool {
        upload.expiresAt == nil && upload.maxDownloads == nil && upload.passwordHash == nil
    }

    /// Ready, published uploads that may be linked (the minihost cache URLs).
    public func publishedUploads() throws -> [Upload] {
        try read { db in
            try Upload.fetchAll(db, sql: """
                SELECT u.* FROM minihost_uploads u JOIN minihost_uploads_publish p ON p.upload_id = u.id
                WHERE u.state = 'ready' AND p.status = 'published' AND \(Self.unconditional)
                """)
        }
    }

    /// Ready uploads with a public link id that may be linked.
    public func publicLinkUploads() throws -> [Upload] {
        try read { db in
            try Upload.fetchAll(db, sql: """
                SELECT u.* FROM minihost_uploads u WHERE u.state = 'ready' AND u.public_id IS NOT NULL AND \(Self.unconditional)
                """)
        }
    }

    /// Makes the public tree match the database: links for what is public,
    /// none for anything else. Run at start and by gc; returns how many links
    /// it made and removed.
    @discardableResult
    public func reconcilePublicTree() throws -> (made: Int, removed: Int) {
        var made = 0, removed = 0
        let wanted: [(PublicTree.Kind, [PublicTree.Link: String])] = [
            (.cache, Dictionary(try publishedUploads().compactMap { upload in
                upload.blob.map { (PublicTree.Link(id: upload.id, contentType: upload.contentType), $0) }
            }) { a, _ in a }),
            (.links, Dictionary(try publicLinkUploads().compactMap { upload in
                guard let publicId = upload.publicId, let blob = upload.blob else { return nil }
                return (PublicTree.Link(id: publicId, contentType: upload.contentType), blob)
            }) { a, _ in a }),
        ]
        for (kind, blobsByLink) in wanted {
            let present = Set(publicTree.links(kind))
            for link in present where blobsByLink[link] == nil {
                publicTree.unpublish(kind, link)
                removed += 1
            }
            for (link, blob) in blobsByLink where !present.contains(link) || !publicTree.links(kind, link, to: blob, blobs: blobs) {
                publicTree.publish(kind, link, blob: blob, blobs: blobs)
                made += 1
            }
        }
        return (made, removed)
    }
}
