import Foundation
import OpenSSLCrypto
import Testing
@testable import Store

@Suite struct AccountTests {
    let cheap = Scrypt(costLog2: 4)

    @Test func primaryAndSecondaryPasswordsVerify() throws {
        let fixture = try TemporaryStore()
        let decoy = try cheap.hash(password: "decoy")
        _ = try fixture.store.createUser(username: "alice", password: "primary-pass", hasher: cheap)
        let (record, secondary) = try fixture.store.createSecondaryPassword(
            username: "alice", label: "ci", options: SecondaryPasswordOptions(canList: true), hasher: cheap)
        #expect(secondary.hasPrefix("sp_") && record.passwordHash != secondary)
        #expect(try fixture.store.verifyAccount(username: "alice", password: "primary-pass", decoyHash: decoy) == .primary(
            try #require(fixture.store.listUsers().first)))
        guard case .secondary(_, let found)? = try fixture.store.verifyAccount(username: "alice", password: secondary, decoyHash: decoy) else {
            Issue.record("secondary password not accepted"); return
        }
        #expect(found.label == "ci" && found.canList && !found.canEdit)
        #expect(try fixture.store.activeSecondaryPasswords(username: "alice").first?.lastUsedAt != nil)
        for (user, password) in [("alice", "wrong-pass"), ("bob", "primary-pass"), ("alice", secondary + "0"),
                                 ("alice", "sp_000000000000_00000000000000000000000000000000")] {
            #expect(try fixture.store.verifyAccount(username: user, password: password, decoyHash: decoy) == nil)
        }
        #expect(try fixture.store.revokeSecondaryPassword(username: "alice", label: "ci"))
        #expect(try fixture.store.verifyAccount(username: "alice", password: secondary, decoyHash: decoy) == nil)
        #expect(try !fixture.store.revokeSecondaryPassword(username: "alice", label: "ci"))
    }

    @Test func revalidateFollowsRevocationAndPasswordChanges() throws {
        let fixture = try TemporaryStore()
        let decoy = try cheap.hash(password: "decoy")
        _ = try fixture.store.createUser(username: "alice", password: "primary-pass", hasher: cheap)
        let (_, secondary) = try fixture.store.createSecondaryPassword(username: "alice", label: "ci", options: .init(), hasher: cheap)
        let primary = VerifiedAccount(try #require(try fixture.store.verifyAccount(username: "alice", password: "primary-pass", decoyHash: decoy)))
        let scoped = VerifiedAccount(try #require(try fixture.store.verifyAccount(username: "alice", password: secondary, decoyHash: decoy)))
        #expect(try fixture.store.revalidate(primary)?.user.username == "alice")
        guard case .secondary(_, let found)? = try fixture.store.revalidate(scoped) else { Issue.record("secondary not revalidated"); return }
        #expect(found.label == "ci")
        var stale = primary
        stale.passwordHash = try cheap.hash(password: "older-pass")
        #expect(try fixture.store.revalidate(stale) == nil)
        #expect(try fixture.store.revokeSecondaryPassword(username: "alice", label: "ci"))
        #expect(try fixture.store.revalidate(scoped) == nil)
    }

    @Test func anotherUsersSecondaryPasswordIsRefused() throws {
        let fixture = try TemporaryStore()
        let decoy = try cheap.hash(password: "decoy")
        _ = try fixture.store.createUser(username: "alice", password: "primary-pass", hasher: cheap)
        _ = try fixture.store.createUser(username: "mallory", password: "primary-pass", hasher: cheap)
        let (_, secondary) = try fixture.store.createSecondaryPassword(username: "alice", label: "ci", options: .init(), hasher: cheap)
        #expect(try fixture.store.verifyAccount(username: "mallory", password: secondary, decoyHash: decoy) == nil)
    }

    @Test func scopedCredentialsStayInsideTheirSubtree() throws {
        let fixture = try TemporaryStore()
        _ = try fixture.store.createUser(username: "alice", password: "primary-pass", hasher: cheap)
        _ = try fixture.store.createUser(username: "bob", password: "primary-pass", hasher: cheap)
        let projects = try fixture.store.createFolder(username: "alice", name: "projects")
        let site = try fixture.store.createFolder(username: "alice", name: "site", parentId: projects.id)
        let other = try fixture.store.createFolder(username: "alice", name: "private")
        let bobs = try fixture.store.createFolder(username: "bob", name: "bobs")
        let (record, _) = try fixture.store.createSecondaryPassword(
            username: "alice", label: "deploy", options: SecondaryPasswordOptions(folderScopeId: projects.id), hasher: cheap)
        let alice = try #require(fixture.store.listUsers().first { $0.username == "alice" })
        let scoped = AccountCredential.secondary(alice, record)
        #expect(try fixture.store.targetFolder(for: scoped, requested: nil).id == projects.id)
        #expect(try fixture.store.targetFolder(for: scoped, requested: site.id).id == site.id)
        #expect(throws: StorageError.self) { try fixture.store.targetFolder(for: scoped, requested: other.id) }
        #expect(throws: StorageError.self) { try fixture.store.targetFolder(for: scoped, requested: bobs.id) }
        let root = try fixture.store.rootFolder(username: "alice")
        #expect(try fixture.store.targetFolder(for: .primary(alice), requested: nil).id == root.id)
        #expect(try fixture.store.targetFolder(for: .primary(alice), requested: other.id).id == other.id)
        #expect(throws: StorageError.self) { try fixture.store.targetFolder(for: .primary(alice), requested: bobs.id) }
    }

    @Test func badInputIsRefused() throws {
        let fixture = try TemporaryStore()
        _ = try fixture.store.createUser(username: "alice", password: "primary-pass", hasher: cheap)
        #expect(throws: StorageError.self) { try fixture.store.createUser(username: "alice", password: "primary-pass", hasher: cheap) }
        #expect(throws: StorageError.self) { try fixture.store.createUser(username: "a/b", password: "primary-pass", hasher: cheap) }
        #expect(throws: StorageError.self) { try fixture.store.createUser(username: "short", password: "x", hasher: cheap) }
        #expect(throws: StorageError.self) { try fixture.store.createFolder(username: "alice", name: "a/b") }
        #expect(throws: StorageError.self) { try fixture.store.createFolder(username: "alice", name: "x", parentId: 999) }
        _ = try fixture.store.createFolder(username: "alice", name: "docs")
        #expect(throws: StorageError.self) { try fixture.store.createFolder(username: "alice", name: "docs") }
        _ = try fixture.store.createSecondaryPassword(username: "alice", label: "ci", options: .init(), hasher: cheap)
        #expect(throws: StorageError.self) {
            try fixture.store.createSecondaryPassword(username: "alice", label: "ci", options: .init(), hasher: cheap)
        }
        #expect(throws: StorageError.self) {
            try fixture.store.createSecondaryPassword(username: "alice", label: "x", options: .init(folderScopeId: 999), hasher: cheap)
        }
    }
}
