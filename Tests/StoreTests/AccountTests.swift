import Foundation
import GRDB
import OpenSSLCrypto
import MinihostTesting
import Testing
@testable import Store

@Suite struct AccountTests {
    let cheap = Scrypt(costLog2: 4)

    @Test func primaryAndSecondaryPasswordsVerify() throws {
        let fixture = try TemporaryStore()
        let decoy = try cheap.hash(password: "decoy")
        _ = try fixture.store.accounts.createUser(username: "alice", password: "primary-pass", hasher: cheap)
        let (record, secondary) = try fixture.store.accounts.createSecondaryPassword(
            username: "alice", label: "ci", options: SecondaryPasswordOptions(canList: true), hasher: cheap)
        #expect(secondary.hasPrefix("sp_") && record.passwordHash != secondary)
        #expect(try fixture.store.accounts.verifyAccount(username: "alice", password: "primary-pass", decoyHash: decoy) == .primary(
            try #require(fixture.store.accounts.listUsers().first)))
        guard case .secondary(_, let found)? = try fixture.store.accounts.verifyAccount(username: "alice", password: secondary, decoyHash: decoy) else {
            Issue.record("secondary password not accepted"); return
        }
        #expect(found.label == "ci" && found.canList && !found.canEdit)
        #expect(try fixture.store.accounts.activeSecondaryPasswords(username: "alice").first?.lastUsedAt != nil)
        for (user, password) in [("alice", "wrong-pass"), ("bob", "primary-pass"), ("alice", secondary + "0"),
                                 ("alice", "sp_000000000000_00000000000000000000000000000000")] {
            #expect(try fixture.store.accounts.verifyAccount(username: user, password: password, decoyHash: decoy) == nil)
        }
        #expect(try fixture.store.accounts.revokeSecondaryPassword(username: "alice", label: "ci"))
        #expect(try fixture.store.accounts.verifyAccount(username: "alice", password: secondary, decoyHash: decoy) == nil)
        #expect(try !fixture.store.accounts.revokeSecondaryPassword(username: "alice", label: "ci"))
    }

    @Test func revalidateFollowsRevocationAndPasswordChanges() throws {
        let fixture = try TemporaryStore()
        let decoy = try cheap.hash(password: "decoy")
        _ = try fixture.store.accounts.createUser(username: "alice", password: "primary-pass", hasher: cheap)
        let (_, secondary) = try fixture.store.accounts.createSecondaryPassword(username: "alice", label: "ci", options: .init(), hasher: cheap)
        let primary = VerifiedAccount(try #require(try fixture.store.accounts.verifyAccount(username: "alice", password: "primary-pass", decoyHash: decoy)))
        let scoped = VerifiedAccount(try #require(try fixture.store.accounts.verifyAccount(username: "alice", password: secondary, decoyHash: decoy)))
        #expect(try fixture.store.accounts.revalidate(primary)?.user.username == "alice")
        guard case .secondary(_, let found)? = try fixture.store.accounts.revalidate(scoped) else { Issue.record("secondary not revalidated"); return }
        #expect(found.label == "ci")
        var stale = primary
        stale.passwordHash = try cheap.hash(password: "older-pass")
        #expect(try fixture.store.accounts.revalidate(stale) == nil)
        #expect(try fixture.store.accounts.revokeSecondaryPassword(username: "alice", label: "ci"))
        #expect(try fixture.store.accounts.revalidate(scoped) == nil)
    }

    @Test func anotherUsersSecondaryPasswordIsRefused() throws {
        let fixture = try TemporaryStore()
        let decoy = try cheap.hash(password: "decoy")
        _ = try fixture.store.accounts.createUser(username: "alice", password: "primary-pass", hasher: cheap)
        _ = try fixture.store.accounts.createUser(username: "mallory", password: "primary-pass", hasher: cheap)
        let (_, secondary) = try fixture.store.accounts.createSecondaryPassword(username: "alice", label: "ci", options: .init(), hasher: cheap)
        #expect(try fixture.store.accounts.verifyAccount(username: "mallory", password: secondary, decoyHash: decoy) == nil)
    }

    @Test func scopedCredentialsStayInsideTheirSubtree() throws {
        let fixture = try TemporaryStore()
        _ = try fixture.store.accounts.createUser(username: "alice", password: "primary-pass", hasher: cheap)
        _ = try fixture.store.accounts.createUser(username: "bob", password: "primary-pass", hasher: cheap)
        let projects = try fixture.store.accounts.createFolder(username: "alice", name: "projects")
        let site = try fixture.store.accounts.createFolder(username: "alice", name: "site", parentId: projects.id)
        let other = try fixture.store.accounts.createFolder(username: "alice", name: "private")
        let bobs = try fixture.store.accounts.createFolder(username: "bob", name: "bobs")
        let (record, _) = try fixture.store.accounts.createSecondaryPassword(
            username: "alice", label: "deploy", options: SecondaryPasswordOptions(folderScopeId: projects.id), hasher: cheap)
        let alice = try #require(fixture.store.accounts.listUsers().first { $0.username == "alice" })
        let scoped = AccountCredential.secondary(alice, record)
        #expect(try fixture.store.accounts.targetFolder(for: scoped, requested: nil).id == projects.id)
        #expect(try fixture.store.accounts.targetFolder(for: scoped, requested: site.id).id == site.id)
        #expect(throws: StorageError.self) { try fixture.store.accounts.targetFolder(for: scoped, requested: other.id) }
        #expect(throws: StorageError.self) { try fixture.store.accounts.targetFolder(for: scoped, requested: bobs.id) }
        let root = try fixture.store.accounts.rootFolder(username: "alice")
        #expect(try fixture.store.accounts.targetFolder(for: .primary(alice), requested: nil).id == root.id)
        #expect(try fixture.store.accounts.targetFolder(for: .primary(alice), requested: other.id).id == other.id)
        #expect(throws: StorageError.self) { try fixture.store.accounts.targetFolder(for: .primary(alice), requested: bobs.id) }
    }

    @Test func badInputIsRefused() throws {
        let fixture = try TemporaryStore()
        _ = try fixture.store.accounts.createUser(username: "alice", password: "primary-pass", hasher: cheap)
        #expect(throws: StorageError.self) { try fixture.store.accounts.createUser(username: "alice", password: "primary-pass", hasher: cheap) }
        #expect(throws: StorageError.self) { try fixture.store.accounts.createUser(username: "a/b", password: "primary-pass", hasher: cheap) }
        #expect(throws: StorageError.self) { try fixture.store.accounts.createUser(username: "short", password: "x", hasher: cheap) }
        #expect(throws: StorageError.self) { try fixture.store.accounts.createFolder(username: "alice", name: "a/b") }
        #expect(throws: StorageError.self) { try fixture.store.accounts.createFolder(username: "alice", name: "x", parentId: 999) }
        _ = try fixture.store.accounts.createFolder(username: "alice", name: "docs")
        #expect(throws: StorageError.self) { try fixture.store.accounts.createFolder(username: "alice", name: "docs") }
        _ = try fixture.store.accounts.createSecondaryPassword(username: "alice", label: "ci", options: .init(), hasher: cheap)
        #expect(throws: StorageError.self) {
            try fixture.store.accounts.createSecondaryPassword(username: "alice", label: "ci", options: .init(), hasher: cheap)
        }
        #expect(throws: StorageError.self) {
            try fixture.store.accounts.createSecondaryPassword(username: "alice", label: "x", options: .init(folderScopeId: 999), hasher: cheap)
        }
    }
}

@Suite struct PlainSideTableMigrationTests {
    @Test func v6MovesPlainAttributesOutOfTheSharedTables() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("minihost-v6-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = DataDirectory(root)
        try directory.create()
        // A data folder as v5 left it: plain attributes as columns of the shared tables.
        let queue = try DatabaseQueue(path: directory.databasePath)
        try Migrations.migrator.migrate(queue, upTo: "v5-finish-claimer")
        try queue.write { db in
            try db.execute(sql: """
                INSERT INTO minihost_users (username, password_hash, created_at) VALUES ('alice', 'h', '2026-01-01');
                INSERT INTO minihost_folders (id, username, parent_id, name, created_at) VALUES (7, 'alice', NULL, '', '2026-01-01');
                INSERT INTO minihost_uploads (id, owner_kind, owner_id, file_name, content_type, size, sha256, blob, state,
                    created_at, public_id, folder_id, force_download, skip_embedded_page)
                VALUES ('u1', 'user', 'alice', 'a.txt', 'text/plain', 1, 'ab', 'ab', 'ready', '2026-01-01', 'pub1', 7, 1, 1),
                       ('u2', 'api_client', 'app', 'b.txt', 'text/plain', 1, 'cd', 'cd', 'ready', '2026-01-01', NULL, NULL, 0, 0);
                INSERT INTO minihost_uploads_publish (upload_id, status, updated_at) VALUES ('u2', 'published', '2026-01-01');
                INSERT INTO minihost_upload_sessions (id, owner_kind, owner_id, file_name, content_type, declared_size,
                    folder_id, state, created_at, expires_at) VALUES ('s1', 'user', 'alice', 'v', 'x/y', 5, 7, 'open',
                    '2026-01-01', '2999-01-01');
                INSERT INTO minihost_upload_session_chunks (session_id, chunk_index, size) VALUES ('s1', 0, 5);
                """)
        }
        let store = try MinihostStore(directory: directory)
        let plain = try #require(try store.plainUploads.upload(publicId: "pub1"))
        #expect(plain.attributes == PlainUploadAttributes(uploadId: "u1", folderId: 7, forceDownload: true, skipEmbeddedPage: true))
        #expect(try store.publishedUpload(id: "u2")?.id == "u2", "the publication survived the rebuild")
        let session = try #require(try store.session(id: "s1"))
        #expect(PlainUploadStore.folderId(inOptions: session.options) == 7)
        #expect(try store.chunks(ofSession: "s1").count == 1, "chunks survived the rebuild")
        let columns = try store.read { db in try db.columns(in: "minihost_uploads").map(\.name) }
        #expect(!columns.contains("folder_id") && !columns.contains("force_download") && columns.contains("client_key"))
    }
}
