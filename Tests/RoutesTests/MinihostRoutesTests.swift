import Foundation
import HTTPCore
import OpenSSLCrypto
import MinihostTesting
import Testing
@testable import Routes
@testable import Store

@Suite struct MinihostRoutesTests {
    @Test func uploadThenDownloadServesTheStoredBlob() throws {
        let fixture = try RouteFixture()
        let credential = try fixture.client()
        let response = fixture.upload(credential, Array("hello".utf8), fileName: "../x/hello.txt")
        #expect(response.status == .ok)
        let id = try #require(response.json["uploadId"] as? String)
        #expect(response.json["uploadFileName"] as? String == "hello.txt")
        #expect(response.json["downloadPath"] as? String == "/api/minihost/download?id=\(id)")
        let download = fixture.send("GET", "/api/minihost/download", query: "id=\(id)",
                                    headers: [("Authorization", "Bearer \(credential)")])
        #expect(download.status == .ok)
        #expect(download.headers["Content-Type"] == "text/plain")
        #expect(download.headers["Content-Disposition"]?.hasPrefix("attachment;") == true)
        let file = try #require(download.servedFile)
        #expect(try String(contentsOfFile: file.absolutePath, encoding: .utf8) == "hello")
    }

    @Test func credentialsAreCheckedBeforeAnythingElse() throws {
        let fixture = try RouteFixture()
        let credential = try fixture.client(scopes: ["download"])
        #expect(fixture.upload("", []).status == .unauthorized)
        let missing = fixture.send("POST", "/api/minihost/upload")
        #expect(missing.status == .unauthorized && missing.json["error"] != nil)
        for header in ["Basic abc", "Bearer nodot", "Bearer .secret", "Bearer key.", "Token a.b"] {
            let response = fixture.send("GET", "/api/minihost/download", query: "id=x", headers: [("Authorization", header)])
            #expect(response.status == .unauthorized, "\(header)")
        }
        let unknown = fixture.send("GET", "/api/minihost/download", query: "id=x", headers: [("Authorization", "Bearer ghost.secret")])
        let wrong = fixture.send("GET", "/api/minihost/download", query: "id=x", headers: [("Authorization", "Bearer app.wrong")])
        #expect(unknown.status == .unauthorized && wrong.status == .unauthorized)
        #expect(unknown.json["error"] as? String == wrong.json["error"] as? String, "unknown key and wrong secret answer alike")
        #expect(fixture.upload(credential, [1]).status == .forbidden)
    }

    @Test func uploadsBelongToTheirClient() throws {
        let fixture = try RouteFixture()
        let mine = try fixture.client("mine")
        let theirs = try fixture.client("theirs")
        let id = try #require(fixture.upload(mine, [1, 2, 3]).json["uploadId"] as? String)
        let download = fixture.send("GET", "/api/minihost/download", query: "id=\(id)", headers: [("Authorization", "Bearer \(theirs)")])
        #expect(download.status == .notFound)
        #expect(fixture.postJSON("/api/minihost/upload_follow_up", ["uploadId": id, "app_payload": ["a": 1]], credential: theirs).status == .notFound)
        #expect(fixture.postJSON("/api/minihost/publishing_upload", ["upload_id": id], credential: theirs).status == .notFound)
    }

    @Test func uploadErrorsAreClearAndLeaveNothing() throws {
        let fixture = try RouteFixture(configuration: ServerConfiguration(maxUploadBytes: 1000, secureCookies: false))
        let credential = try fixture.client()
        #expect(fixture.upload(credential, Array(repeating: 1, count: 1001)).status == .payloadTooLarge)
        let noFile = fixture.send("POST", "/api/minihost/upload", headers: [
            ("Authorization", "Bearer \(credential)"), ("Content-Type", "multipart/form-data; boundary=b"),
        ], body: Array("--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--b--\r\n".utf8))
        #expect(noFile.status == .badRequest)
        let notMultipart = fixture.send("POST", "/api/minihost/upload", headers: [
            ("Authorization", "Bearer \(credential)"), ("Content-Type", "application/json"),
        ], body: Array("{}".utf8))
        #expect(notMultipart.status == .badRequest)
        let truncated = fixture.send("POST", "/api/minihost/upload", headers: [
            ("Authorization", "Bearer \(credential)"), ("Content-Type", "multipart/form-data; boundary=b"),
        ], body: Array("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nxxxx".utf8))
        #expect(truncated.status == .badRequest)
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.root + "/tmp").isEmpty)
        #expect(try fixture.store.checkIntegrity().isEmpty)
        #expect(fixture.store.blobs.allHashes().isEmpty)
    }

    @Test func followUpMergesPayloadAndValidatesInput() throws {
        let fixture = try RouteFixture()
        let credential = try fixture.client()
        let id = try #require(fixture.upload(credential, [9]).json["uploadId"] as? String)
        let first = fixture.postJSON("/api/minihost/upload_follow_up", ["uploadId": id, "app_payload": ["build": 42]], credential: credential)
        #expect(first.status == .ok)
        let second = fixture.postJSON("/api/minihost/upload_follow_up",
                                      ["upload_id": id, "channel": "stable", "appHandledAt": "2026-04-17T12:00:00+02:00"],
                                      credential: credential)
        #expect(second.status == .ok)
        let payload = try #require(second.json["appPayload"] as? [String: Any])
        #expect(payload["build"] as? Int == 42 && payload["channel"] as? String == "stable")
        #expect(second.json["appHandledAt"] as? String == "2026-04-17T10:00:00.000Z")

        let bad: [[String: Any]] = [
            [:], ["uploadId": id], ["uploadId": id, "app_payload": "text"], ["uploadId": id, "app_handled_at": "yesterday"],
            ["uploadId": 5, "app_payload": ["a": 1]],
        ]
        for body in bad {
            #expect(fixture.postJSON("/api/minihost/upload_follow_up", body, credential: credential).status == .badRequest, "\(body)")
        }
        let malformed = fixture.send("POST", "/api/minihost/upload_follow_up",
                                     headers: [("Authorization", "Bearer \(credential)")], body: Array("{not json".utf8))
        #expect(malformed.status == .badRequest)
        #expect(fixture.postJSON("/api/minihost/upload_follow_up", ["uploadId": "nope", "app_payload": ["a": 1]],
                                 credential: credential).status == .notFound)
    }

    @Test func purgeFlagsRemoveUploads() throws {
        let fixture = try RouteFixture()
        let credential = try fixture.client()
        let id = try #require(fixture.upload(credential, [1]).json["uploadId"] as? String)
        // `{"_PURGE": 1}` is not the flag: it is stored as metadata.
        #expect(fixture.postJSON("/api/minihost/upload_follow_up", ["uploadId": id, "app_payload": ["_PURGE": 1]], credential: credential).json["purged"] == nil)
        let purged = fixture.postJSON("/api/minihost/upload_follow_up", ["uploadId": id, "app_payload": ["_PURGE": true]], credential: credential)
        #expect(purged.status == .ok && purged.json["purged"] as? Bool == true)
        #expect(fixture.send("GET", "/api/minihost/download", query: "id=\(id)", headers: [("Authorization", "Bearer \(credential)")]).status == .notFound)

        let old = try #require(fixture.upload(credential, [2]).json["uploadId"] as? String)
        let new = try #require(fixture.upload(credential, [3]).json["uploadId"] as? String)
        let replaced = fixture.postJSON("/api/minihost/upload_follow_up",
                                        ["uploadId": new, "app_payload": ["v": 2], "_PURGE_FOR_REPLACEMENT": old], credential: credential)
        #expect(replaced.status == .ok)
        #expect(try fixture.store.upload(id: old)?.state == .purged)
        #expect((replaced.json["appPayload"] as? [String: Any])?["_PURGE_FOR_REPLACEMENT"] == nil)
    }

    @Test func publishingServesThePublicCacheURL() throws {
        let fixture = try RouteFixture(configuration: ServerConfiguration(publicOrigin: "https://files.example", secureCookies: false))
        let credential = try fixture.client()
        let id = try #require(fixture.upload(credential, Array("pub".utf8)).json["uploadId"] as? String)
        #expect(fixture.send("GET", "/minihost/cache/\(id)").status == .notFound)
        let published = fixture.postJSON("/api/minihost/publishing_upload", ["upload_id": id, "status": "published"], credential: credential)
        #expect(published.json["cache_url"] as? String == "https://files.example/minihost/cache/\(id)")
        for path in ["/minihost/cache/\(id)", "/api/minihost/cache/\(id)"] {
            let response = fixture.send("GET", path)
            #expect(response.status == .ok)
            #expect(response.headers["Cache-Control"] == "public, max-age=31536000, immutable")
            #expect(response.headers["Content-Disposition"]?.hasPrefix("inline;") == true)
        }
        #expect(fixture.postJSON("/api/minihost/publishing_upload", ["upload_id": id, "status": "hidden"], credential: credential).status == .badRequest)
        let unpublished = fixture.postJSON("/api/minihost/publishing_upload", ["upload_id": id, "status": "unpublished"], credential: credential)
        #expect(unpublished.status == .ok && unpublished.json["cache_url"] == nil)
        #expect(fixture.send("GET", "/minihost/cache/\(id)").status == .notFound)
    }

    @Test func operatorSessionGuardsTheDashboardRoutes() throws {
        let fixture = try RouteFixture()
        try fixture.store.operators.set(username: "root", password: "s3cret-pass", hasher: Scrypt(costLog2: 4))
        let credential = try fixture.client()
        let id = try #require(fixture.upload(credential, [5]).json["uploadId"] as? String)
        #expect(fixture.send("GET", "/minihost/dashboard/admin-download", query: "id=\(id)").status == .unauthorized)
        #expect(fixture.postJSON("/api/minihost/admin-login", ["username": "root", "password": "nope"]).status == .unauthorized)
        #expect(fixture.postJSON("/api/minihost/admin-login", ["username": "ghost", "password": "nope"]).status == .unauthorized)
        let login = fixture.postJSON("/api/minihost/admin-login", ["username": "root", "password": "s3cret-pass"])
        #expect(login.status == .ok)
        let setCookie = try #require(login.headers["Set-Cookie"])
        #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Lax") && !setCookie.contains("Secure"))
        let cookie = String(setCookie.split(separator: ";")[0])
        let download = fixture.send("GET", "/minihost/dashboard/admin-download", query: "id=\(id)&inline=1", headers: [("Cookie", cookie)])
        #expect(download.status == .ok && download.headers["Content-Disposition"]?.hasPrefix("inline;") == true)
        let forged = cookie.dropLast(2) + "00"
        #expect(fixture.send("GET", "/minihost/dashboard/admin-download", query: "id=\(id)", headers: [("Cookie", String(forged))]).status == .unauthorized)
        let redirect = fixture.send("GET", "/api/minihost/admin-download", query: "id=\(id)&inline=1")
        #expect(redirect.status == .temporaryRedirect)
        #expect(redirect.headers["Location"] == "/minihost/dashboard/admin-download?id=\(id)&inline=1")
        let purge = fixture.postJSON("/api/minihost/admin-purge-unhandled", ["olderThanHours": 0], cookie: cookie)
        #expect(purge.status == .ok && purge.json["purgedCount"] as? Int == 1 && purge.json["cutoff"] is String)
        #expect(fixture.postJSON("/api/minihost/admin-logout", [:], cookie: cookie).status == .ok)
        #expect(fixture.postJSON("/api/minihost/admin-purge-unhandled", [:], cookie: cookie).status == .unauthorized)
    }

    @Test func routerAnswersOptionsUnknownPathsAndWrongMethods() throws {
        let fixture = try RouteFixture(configuration: ServerConfiguration(extraCORSOrigins: ["https://app.example"], secureCookies: false))
        let preflight = fixture.send("OPTIONS", "/api/minihost/upload", headers: [
            ("Origin", "https://app.example"), ("Access-Control-Request-Headers", "authorization"),
        ])
        #expect(preflight.status == .noContent)
        #expect(preflight.headers["Access-Control-Allow-Origin"] == "https://app.example")
        #expect(preflight.headers["Access-Control-Allow-Methods"]?.contains("POST") == true)
        let foreign = fixture.send("OPTIONS", "/api/minihost/upload", headers: [("Origin", "https://evil.example")])
        #expect(foreign.status == .noContent && foreign.headers["Access-Control-Allow-Origin"] == nil)
        #expect(fixture.send("GET", "/api/nothing").status == .notFound)
        let wrongMethod = fixture.send("GET", "/api/minihost/upload")
        #expect(wrongMethod.status == .methodNotAllowed && wrongMethod.headers["Allow"]?.contains("POST") == true)
        let health = fixture.send("GET", "/api/health")
        #expect(health.json["status"] as? String == "ok" && health.json["version"] is String && health.json["timestamp"] is String)
    }

    @Test func configurationReadsTheEnvironment() {
        let (configuration, warnings) = ServerConfiguration.fromEnvironment([
            "MINIHOST_MAX_MB": "900", "MINIHOST_CORS_ORIGINS": "https://a.example, https://b.example",
            "NEXT_PUBLIC_MINIHOST_PUBLIC_ORIGIN": "https://cdn.example/", "MINIHOST_AUDIT_ECHO": "1",
        ])
        #expect(configuration.maxUploadMB == 500 && warnings.count == 1)
        #expect(configuration.extraCORSOrigins == ["https://a.example", "https://b.example"])
        #expect(configuration.publicOrigin == "https://cdn.example")
        #expect(configuration.auditEcho)
        #expect(ServerConfiguration.fromEnvironment([:]).0.maxUploadMB == 50)
        #expect(ServerConfiguration.fromEnvironment(["MINIHOST_PUBLIC_ORIGIN": "https://x", "NEXT_PUBLIC_MINIHOST_PUBLIC_ORIGIN": "https://y"]).0.publicOrigin == "https://x")
    }
}
