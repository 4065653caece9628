import Foundation
import HTTPCore
import OpenSSLCrypto
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
        _ = try fixture.store.createUser(username: "alice", password: "primary-pass", hasher: Scrypt(costLog2: 4))
        let valid = form(fixture, "/api/cliCheckCredentials", "username=alice&password=primary-pass")
        #expect(valid.status == .ok && text(valid) == "VALID")
        let invalid = form(fixture, "/api/cliCheckCredentials", "username=alice&password=nope")
        #expect(invalid.status == .unauthorized && text(invalid) == "INVALID")
        let missing = form(fixture, "/api/cliCheckCredentials", "username=alice")
        #expect(missing.status == .badRequest && text(missing) == "MISSING")
        #expect(missing.headers["Content-Type"]?.hasPrefix("text/plain") == true)
    }

    @Test func getMeReportsModeAndSecondaryPermissions() throws {
        let fixture = try RouteFixture()
        _ = try fixture.store.createUser(username: "alice", password: "primary-pass", hasher: Scrypt(costLog2: 4))
        let folder = try fixture.store.createFolder(username: "alice", name: "ci")
        let (_, secondary) = try fixture.store.createSecondaryPassword(
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
        _ = try fixture.store.createUser(username: "alice", password: "primary-pass", hasher: Scrypt(costLog2: 4))
        let folder = try fixture.store.createFolder(username: "alice", name: "ci")
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
