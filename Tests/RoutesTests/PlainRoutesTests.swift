import Foundation
import HTTPCore
import OpenSSLCrypto
import MinihostTesting
import Testing
@testable import Routes
@testable import Store

@Suite struct PlainRoutesTests {
    func form(_ fixture: RouteFixture, _ path: String, _ body: String) -> Response {
        fixture.send("POST", path, headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array(body.utf8))
    }

    func text(_ response: Response) -> String {
        guard case .bytes(let bytes) = response.body else { return "" }
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .newlines)
    }

    @Test func cliCheckCredentialsAnswersInPlainText() throws {
        let fixture = try RouteFixture()
        _ = try fixture.store.accounts.createUser(username: "alice", password: "primary-pass", hasher: Scrypt(costLog2: 4))
        let valid = form(fixture, "/api/cliCheckCredentials", "username=alice&password=primary-pass")
        #expect(valid.status == .ok && text(valid) == "VALID")
        let invalid = form(fixture, "/api/cliCheckCredentials", "username=alice&password=nope")
        #expect(invalid.status == .unauthorized && text(invalid) == "INVALID")
        let missing = form(fixture, "/api/cliCheckCredentials", "username=alice")
        #expect(missing.status == .badRequest && text(missing) == "MISSING")
        #expect(missing.headers["Content-Type"]?.hasPrefix("text/plain") == true)
    }

    @Test func aRememberedCredentialStopsWorkingWhenRevoked() throws {
        let fixture = try RouteFixture()
        _ = try fixture.store.accounts.createUser(username: "alice", password: "primary-pass", hasher: Scrypt(costLog2: 4))
        let (_, secondary) = try fixture.store.accounts.createSecondaryPassword(
            username: "alice", label: "ci", options: .init(), hasher: Scrypt(costLog2: 4))
        let check = { (password: String) in self.text(self.form(fixture, "/api/cliCheckCredentials", "username=alice&password=\(password)")) }
        #expect(check(secondary) == "VALID")
        #expect(fixture.context.verifiedCredentials.account(username: "alice", password: secondary) != nil)
        #expect(fixture.context.verifiedCredentials.account(username: "alice", password: secondary + "x") == nil)
        #expect(check(secondary) == "VALID")
        #expect(try fixture.store.accounts.revokeSecondaryPassword(username: "alice", label: "ci"))
        #expect(check(secondary) == "INVALID")
        #expect(fixture.context.verifiedCredentials.account(username: "alice", password: secondary) == nil)
        #expect(check("wrong-pass") == "INVALID")
        #expect(fixture.context.verifiedCredentials.account(username: "alice", password: "wrong-pass") == nil)
    }

    @Test func theCredentialCacheForgetsAfterItsLifetime() {
        let cache = VerifiedCredentialCache(lifetime: 60, capacity: 2)
        let start = Date()
        let account = VerifiedAccount(.primary(User(username: "alice", passwordHash: "h", quotaBytes: nil, createdAt: start)))
        cache.remember(username: "alice", password: "pw", as: account, now: start)
        #expect(cache.account(username: "alice", password: "pw", now: start.addingTimeInterval(59)) == account)
        #expect(cache.account(username: "alice", password: "pw", now: start.addingTimeInterval(61)) == nil)
        #expect(cache.account(username: "alic", password: "epw", now: start) == nil)
        // Full of live entries: the cache starts over rather than grow past its capacity.
        for name in ["a", "b", "c"] { cache.remember(username: name, password: "pw", as: account, now: start) }
        #expect(cache.count <= 2)
        #expect(cache.account(username: "c", password: "pw", now: start) == account)
        #expect(cache.account(username: "a", password: "pw", now: start) == nil)
        // Expired entries are what goes first.
        let aging = VerifiedCredentialCache(lifetime: 60, capacity: 2)
        aging.remember(username: "old", password: "pw", as: account, now: start)
        aging.remember(username: "kept", password: "pw", as: account, now: start.addingTimeInterval(30))
        aging.remember(username: "new", password: "pw", as: account, now: start.addingTimeInterval(70))
        #expect(aging.count == 2)
        #expect(aging.account(username: "kept", password: "pw", now: start.addingTimeInterval(70)) == account)
        #expect(aging.account(username: "new", password: "pw", now: start.addingTimeInterval(70)) == account)
        let off = VerifiedCredentialCache(lifetime: 0)
        off.remember(username: "alice", password: "pw", as: account, now: start)
        #expect(off.account(username: "alice", password: "pw", now: start) == nil)
    }

    @Test func getMeReportsModeAndSecondaryPermissions() throws {
        let fixture = try RouteFixture()
        _ = try fixture.store.accounts.createUser(username: "alice", password: "primary-pass", hasher: Scrypt(costLog2: 4))
        let folder = try fixture.store.accounts.createFolder(username: "alice", name: "ci")
        let (_, secondary) = try fixture.store.accounts.createSecondaryPassword(
            username: "alice", label: "ci-runner", options: SecondaryPasswordOptions(folderScopeId: folder.id, canList: true),
            hasher: Scrypt(costLog2: 4))
        let primary = fixture.postJSON("/api/getMe", ["username": "alice", "password": "primary-pass"])
        #expect(primary.json["mode"] as? String == "primary" && primary.json["secondaryLabel"] == nil)
        let scoped = form(fixture, "/api/getMe", "username=alice&password=\(secondary)")
        #expect(scoped.json["mode"] as? String == "secondary")
        #expect(scoped.json["secondaryLabel"] as? String == "ci-runner")
        #expect((scoped.json["secondaryFolderScopeId"] as? NSNumber)?.int64Value == folder.id)
        #expect(scoped.json["secondaryCanListFiles"] as? Bool == true && scoped.json["secondaryCanEditFiles"] as? Bool == false)
        #expect(fixture.postJSON("/api/getMe", ["username": "alice"]).json["error"] as? String == "Missing username or password")
        #expect(fixture.postJSON("/api/getMe", ["username": "alice", "password": "x"]).status == .unauthorized)
    }

    @Test func createFromPrimaryNeedsThePrimaryPassword() throws {
        let fixture = try RouteFixture()
        _ = try fixture.store.accounts.createUser(username: "alice", password: "primary-pass", hasher: Scrypt(costLog2: 4))
        let folder = try fixture.store.accounts.createFolder(username: "alice", name: "ci")
        let created = fixture.postJSON("/api/secondaryPasswords/createFromPrimary", [
            "username": "alice", "password": "primary-pass", "label": "nightly", "folderIdScope": folder.id!, "canEditFiles": true,
        ])
        #expect(created.status == .ok)
        let password = try #require(created.json["password"] as? String)
        #expect(created.json["canEditFiles"] as? Bool == true && created.json["canListFiles"] as? Bool == false)
        let withSecondary = fixture.postJSON("/api/secondaryPasswords/createFromPrimary", ["username": "alice", "password": password])
        #expect(withSecondary.status == .forbidden)
        let duplicate = fixture.postJSON("/api/secondaryPasswords/createFromPrimary", [
            "username": "alice", "password": "primary-pass", "label": "nightly",
        ])
        #expect(duplicate.status == .badRequest)
        let foreignFolder = fixture.postJSON("/api/secondaryPasswords/createFromPrimary", [
            "username": "alice", "password": "primary-pass", "folderIdScope": 999,
        ])
        #expect(foreignFolder.status == .notFound)
    }
}
