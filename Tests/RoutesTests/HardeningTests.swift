import Foundation
import HTTPCore
import OpenSSLCrypto
import MinihostTesting
import Testing
@testable import Routes
@testable import Store

@Suite struct MediaTypeTests {
    @Test func validTypesParseWholeAndNormalize() throws {
        let type = try #require(MediaType("Text/HTML ; Charset=\"utf-8\" ;; q=1 ;"))
        #expect(type.essence == "text/html")
        #expect(type.parameter("charset") == "utf-8")
        #expect(type.description == "text/html; charset=utf-8; q=1")
        #expect(MediaType("application/vnd.api+json")?.essence == "application/vnd.api+json")
        #expect(MediaType("text/plain; name=\"a \\\"b\\\"\"")?.description == "text/plain; name=\"a \\\"b\\\"\"")
    }

    @Test func anythingButOneMediaTypeIsRefused() {
        for text in ["image/png;x=,text/html", "image/png, text/html", "text/html text/plain", "image/png;x",
                     "image/png;=x", "image/png;x=\"unterminated", "/png", "image/", "image", "", " ",
                     "image/png;x=a b", "text/plain\u{7f}", "image/pñg", "text/plain;x=\"\u{1}\"",
                     // found by FuzzForms: a tab inside a quoted value
                     "Text/HTM ; Charset=\"ut-~ H./e\t\t\t\t\t;\t\t\tf;\"; q=1",
                     String(repeating: "a", count: 200) + "/" + String(repeating: "b", count: 100),
                     "a/b" + String(repeating: ";p=1", count: 9)] {
            #expect(MediaType(text) == nil, "\(text)")
            #expect(MediaType.sanitize(text) == "application/octet-stream", "\(text)")
        }
    }

    @Test func onlyWholeSafeTypesAreInlineOnTheServersOrigin() {
        for safe in ["image/png", "IMAGE/JPEG", "text/plain; charset=utf-8", "application/pdf", "video/mp4", "audio/mpeg"] {
            #expect(StoredContent.isInlineSafe(safe), "\(safe)")
        }
        for unsafe in ["text/html", "image/svg+xml", "application/xhtml+xml", "text/xml", "application/xml",
                       "application/javascript", "text/javascript", "image/png;x=,text/html", "text/plain,text/html",
                       "application/octet-stream", "image/svg", "video/x-anything-new", "application/x-shockwave-flash"] {
            #expect(!StoredContent.isInlineSafe(unsafe), "\(unsafe)")
        }
        #expect(StoredContent.disposition(.inline, contentType: "text/html", onContentOrigin: true) == .inline)
        #expect(StoredContent.disposition(.inline, contentType: "text/html", onContentOrigin: false) == .attachment)
        #expect(StoredContent.disposition(.attachment, contentType: "image/png", onContentOrigin: true) == .attachment)
    }
}

@Suite struct RouterHardeningTests {
    @Test func pathsMatchExactly() throws {
        let fixture = try RouteFixture()
        for path in ["/api/health/", "//api/health", "/api//health", "/api/health//", "api/health", "/API/health",
                     "/api/health/.", "/minihost/cache/", "/minihost/cache//", "/s/", "/"] {
            #expect(fixture.send("GET", path).status == .notFound, "\(path)")
        }
        #expect(fixture.send("GET", "/api/health").status == .ok)
        #expect(fixture.postJSON("/api/minihost/admin-login/", ["username": "a", "password": "b"]).status == .notFound)
    }

    @Test func theContentOriginAnswersOnlyRoutesThatServeStoredBytes() throws {
        let fixture = try RouteFixture()
        let onContent = { (method: String, path: String) in
            fixture.router.respond(to: Request(method: method, path: path, isContentOrigin: true))
        }
        #expect(onContent("GET", "/api/health").status == .notFound)
        #expect(onContent("POST", "/api/minihost/admin-login").status == .notFound)
        #expect(onContent("GET", "/api/minihost/download").status == .notFound)
        // Routed there (and 404 only because nothing is published under that id).
        let cache = onContent("GET", "/minihost/cache/abc")
        #expect(cache.status == .notFound && cache.json["error"] as? String == "Not found")
    }

    @Test func numericInputsAreRangeChecked() throws {
        let fixture = try RouteFixture()
        try fixture.store.operators.set(username: "root", password: "s3cret-pass", hasher: Scrypt(costLog2: 4))
        let login = fixture.postJSON("/api/minihost/admin-login", ["username": "root", "password": "s3cret-pass"])
        let cookie = String(try #require(login.headers["Set-Cookie"]).split(separator: ";")[0])
        for value: Any in [1e300, -1, 876_001, "1", true, NSNull()] {
            let purge = fixture.postJSON("/api/minihost/admin-purge-unhandled", ["olderThanHours": value], cookie: cookie)
            #expect(purge.status == .badRequest, "\(value)")
        }
        #expect(fixture.postJSON("/api/minihost/admin-purge-unhandled", ["olderThanHours": 876_000], cookie: cookie).status == .ok)
    }

    @Test func environmentNumbersOutOfRangeFallBack() {
        let (configuration, warnings) = ServerConfiguration.fromEnvironment([
            "MINIHOST_MAX_CHUNKED_MB": "1e300", "MINIHOST_SESSION_HOURS": "-5", "MINIHOST_MAX_CHUNK_MB": "nan",
            "MINIHOST_CREDENTIAL_CACHE_SECONDS": "inf", "MINIHOST_MAX_CHUNKS": "2.5", "MINIHOST_PASSWORD_QUEUE": "7",
            "MINIHOST_UNHANDLED_CUTOFF_HOURS": "1e20", "MINIHOST_PUBLIC_ORIGIN": "javascript:alert(1)",
            "MINIHOST_CONTENT_ORIGIN": "https://user.example/path",
        ])
        #expect(warnings.count == 8, "\(warnings)")
        #expect(configuration.maxChunkedUploadBytes == 4096 << 20 && configuration.sessionLifetime == 24 * 3600)
        #expect(configuration.maxChunkBytes == 100 << 20 && configuration.credentialCacheLifetime == 60)
        #expect(configuration.storeConfiguration.maxChunksPerSession == 10_000 && configuration.passwordQueue == 7)
        #expect(configuration.unhandledCutoff == 24 * 3600)
        #expect(configuration.publicOrigin == nil && configuration.contentOrigin == nil)
        let same = ServerConfiguration.fromEnvironment(["MINIHOST_PUBLIC_ORIGIN": "https://a.example",
                                                        "MINIHOST_CONTENT_ORIGIN": "https://a.example/"])
        #expect(same.0.contentOrigin == nil && same.warnings.count == 1)
    }

    @Test func corsAllowsOnlyDevelopmentPortsThePublicOriginAndConfiguredOnes() {
        let policy = CORSPolicy(publicOrigin: "https://files.example", extraOrigins: ["https://app.example/"])
        #expect(policy.allowedOrigins.contains("https://files.example") && policy.allowedOrigins.contains("https://app.example"))
        #expect(!policy.allowedOrigins.contains { $0.contains("2nfro") })
        #expect(policy.allowedOrigins.allSatisfy {
            ["https://files.example", "https://app.example"].contains($0) || $0.hasPrefix("http://localhost:")
                || $0.hasPrefix("http://127.0.0.1:")
        })
    }
}

@Suite struct PasswordLimiterTests {
    @Test func theQueueIsBoundedAndOverflowIsRefusedAtOnce() throws {
        let limiter = ConcurrencyLimiter(limit: 1, maxWaiting: 1, maxWait: 5)
        let inside = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let waiterDone = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            _ = try? limiter.run { inside.signal(); release.wait() }
        }
        inside.wait()
        DispatchQueue.global().async {
            _ = try? limiter.run { }
            waiterDone.signal()
        }
        while limiter.waitingCount < 1 { usleep(1000) }
        #expect(throws: ConcurrencyLimiter.Overloaded.self) { try limiter.run { } }
        release.signal()
        waiterDone.wait()
        #expect(try limiter.run { 42 } == 42)
    }

    @Test func aWaitPastItsLimitIsRefused() throws {
        let limiter = ConcurrencyLimiter(limit: 1, maxWaiting: 4, maxWait: 0.2)
        let inside = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            _ = try? limiter.run { inside.signal(); release.wait() }
        }
        inside.wait()
        #expect(throws: ConcurrencyLimiter.Overloaded.self) { try limiter.run { } }
        release.signal()
    }

    @Test func requestsQueuedForScryptUseACredentialVerifiedMeanwhile() throws {
        var configuration = ServerConfiguration(secureCookies: false)
        configuration.passwordChecks = 1
        let fixture = try RouteFixture(configuration: configuration)
        let user = try fixture.store.accounts.createUser(username: "alice", password: "alice password", hasher: Scrypt(costLog2: 4))
        // A hash scrypt can't verify (it throws): only the cache can admit these requests.
        try fixture.store.database.write { db in
            try db.execute(sql: "UPDATE minihost_users SET password_hash = 'not-a-hash' WHERE username = 'alice'")
        }
        let inside = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            _ = try? fixture.context.passwordHashing.run { inside.signal(); release.wait() }
        }
        inside.wait()
        let answers = LockedAnswers()
        let group = DispatchGroup()
        for _ in 0..<4 {
            DispatchQueue.global().async(group: group) {
                let response = fixture.send("POST", "/api/cliCheckCredentials",
                                            headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                            body: Array("username=alice&password=alice%20password".utf8))
                answers.append(response.status.code)
            }
        }
        while fixture.context.passwordHashing.waitingCount < 4 { usleep(1000) }
        // Another request verified the same credentials while these waited.
        var verified = user
        verified.passwordHash = "not-a-hash"
        fixture.context.verifiedCredentials.remember(username: "alice", password: "alice password",
                                                     as: VerifiedAccount(.primary(verified)))
        release.signal()
        group.wait()
        #expect(answers.values == [200, 200, 200, 200])
    }

    @Test func anOverloadedPasswordCheckIsA503InTheRoutesDialect() throws {
        var configuration = ServerConfiguration(secureCookies: false)
        configuration.passwordChecks = 1
        configuration.passwordQueue = 0
        let fixture = try RouteFixture(configuration: configuration)
        _ = try fixture.store.accounts.createUser(username: "alice", password: "alice password", hasher: Scrypt(costLog2: 4))
        let release = DispatchSemaphore(value: 0)
        let inside = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            _ = try? fixture.context.passwordHashing.run { inside.signal(); release.wait() }
        }
        inside.wait()
        defer { release.signal() }
        let form = Array("username=alice&password=wrong".utf8)
        let plain = fixture.send("POST", "/api/cliCheckCredentials", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: form)
        #expect(plain.status == .serviceUnavailable && plain.headers["Retry-After"] == "2")
        if case .bytes(let bytes) = plain.body { #expect(String(decoding: bytes, as: UTF8.self) == "ERR Server busy, retry shortly\n") }
        let json = fixture.send("POST", "/api/getMe", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: form)
        #expect(json.status == .serviceUnavailable && json.json["error"] as? String == "Server busy, retry shortly")
    }
}

@Suite struct MultipartLimitTests {
    final class Discard: MultipartFormHandler {
        var parts = 0
        func beginPart(_ headers: MultipartPartHeaders) throws { parts += 1 }
        func partBody(_ bytes: UnsafeRawBufferPointer) throws {}
        func endPart() throws {}
    }

    @Test func partsAndHeaderBytesAreBounded() throws {
        let many = (0..<65).map { "--b\r\nContent-Disposition: form-data; name=\"f\($0)\"\r\n\r\nv\r\n" }.joined() + "--b--\r\n"
        #expect(throws: MultipartError.self) {
            try MultipartFormStream.parse(BufferedRequestBody(Array(many.utf8)), boundary: "b", handler: Discard())
        }
        let name = String(repeating: "n", count: 15_000)
        let longNames = (0..<5).map { "--b\r\nContent-Disposition: form-data; name=\"\(name)\($0)\"\r\n\r\n\r\n" }.joined() + "--b--\r\n"
        #expect(throws: MultipartError.self) {
            try MultipartFormStream.parse(BufferedRequestBody(Array(longNames.utf8), chunkLimit: 1000), boundary: "b",
                                          handler: Discard())
        }
        let fine = (0..<64).map { "--b\r\nContent-Disposition: form-data; name=\"f\($0)\"\r\n\r\nv\r\n" }.joined() + "--b--\r\n"
        let handler = Discard()
        try MultipartFormStream.parse(BufferedRequestBody(Array(fine.utf8), chunkLimit: 7), boundary: "b", handler: handler)
        #expect(handler.parts == 64)
    }

    @Test func fieldNamesCountAgainstTheFieldBudget() throws {
        let fixture = try RouteFixture()
        let credential = try fixture.client()
        // 40 KB of names and 28 KB of values: each alone fits 64 KB, together not.
        let name = String(repeating: "n", count: 10_000)
        let value = String(repeating: "v", count: 7_000)
        let body = (0..<4).map { "--b\r\nContent-Disposition: form-data; name=\"\(name)\($0)\"\r\n\r\n\(value)\r\n" }.joined()
            + "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nx\r\n--b--\r\n"
        let response = fixture.send("POST", "/api/minihost/upload", headers: [
            ("Authorization", "Bearer \(credential)"), ("Content-Type", "multipart/form-data; boundary=b"),
        ], body: Array(body.utf8))
        #expect(response.status == .payloadTooLarge)
        #expect(try fixture.store.clients.list().count == 1)
    }
}

@Suite struct StoredContentRouteTests {
    @Test func everyAnswerWithStoredBytesIsHardened() throws {
        let fixture = try RouteFixture()
        let credential = try fixture.client()
        let boundary = "b"
        let body = Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.html\"\r\nContent-Type: image/png;x=,text/html\r\n\r\n<script>1</script>\r\n--\(boundary)--\r\n".utf8)
        let upload = fixture.send("POST", "/api/minihost/upload", headers: [
            ("Authorization", "Bearer \(credential)"), ("Content-Type", "multipart/form-data; boundary=\(boundary)"),
        ], body: body)
        let id = try #require(upload.json["uploadId"] as? String)
        #expect(upload.json["contentType"] as? String == "application/octet-stream")
        _ = fixture.postJSON("/api/minihost/publishing_upload", ["upload_id": id], credential: credential)
        for response in [fixture.send("GET", "/minihost/cache/\(id)"),
                         fixture.send("GET", "/api/minihost/download", query: "id=\(id)",
                                      headers: [("Authorization", "Bearer \(credential)")])] {
            #expect(response.headers["X-Content-Type-Options"] == "nosniff")
            #expect(response.headers["Content-Security-Policy"] == "sandbox")
            #expect(response.headers["Content-Disposition"]?.hasPrefix("attachment;") == true)
        }
    }
}

final class LockedAnswers: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Int] = []
    var values: [Int] { lock.lock(); defer { lock.unlock() }; return items }
    func append(_ value: Int) { lock.lock(); items.append(value); lock.unlock() }
}

/// Inputs the fuzzers found, kept as regressions.
@Suite struct FuzzFindingTests {
    @Test func separatorsAreNeverSwallowedByAGraphemeCluster() throws {
        // U+0601 is a prepended concatenation mark: "\u{0601}/" is one Character.
        #expect(DisplayName.sanitize("a\u{0601}/evil") == "evil")
        #expect(!DisplayName.sanitize("+\u{0601}/+\0x").contains("/"))
        #expect(FormURLEncoded.parse("a=1\u{0601}&b=2") == ["a": "1\u{0601}", "b": "2"])
        #expect(Router.split("/s/\u{0601}/x").count == 3)
        let fixture = try RouteFixture()
        #expect(fixture.send("GET", "/minihost/cache/x\u{0601}/y").status == .notFound)
    }

    @Test func aNormalizedTypeTooLongToParseAgainIsNotStored() {
        // Each ";" gains a space when normalized: 255 bytes sent become more.
        let raw = "a/b" + String(repeating: ";x=1", count: 8) + ";y=\"" + String(repeating: "v", count: 200) + "\""
        #expect(MediaType(raw) == nil || MediaType(MediaType.sanitize(raw)) != nil)
        let long = "image/png;" + String(repeating: "p", count: 120) + "=\"" + String(repeating: "\\\\", count: 60) + "\""
        #expect(long.utf8.count <= 255)
        #expect(MediaType(MediaType.sanitize(long)) != nil)
    }
}

@Suite struct FieldBudgetTests {
    @Test func fieldsThatAreNotUTF8CountAsTheyAreKept() throws {
        final class Sink: FileSink {
            var size: Int64 = 0
            func write(_ bytes: UnsafeRawBufferPointer) throws { size += Int64(bytes.count) }
            func abandon() {}
        }
        // 400 bytes of 0xFF become 1,200 bytes of U+FFFD: past a 1,000-byte budget.
        let body = Array("--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n".utf8) + Array(repeating: 0xFF, count: 400)
            + Array("\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nx\r\n--b--\r\n".utf8)
        var receiver = FileUploadReceiver(maxBytes: 100)
        receiver.maxFieldBytes = 1000
        let request = Request(method: "POST", path: "/", headers: HTTPHeaders([("Content-Type", "multipart/form-data; boundary=b")]),
                              body: BufferedRequestBody(body))
        #expect(throws: HTTPErrorResponse.self) {
            _ = try receiver.receive(request, tooLarge: HTTPErrorResponse(.payloadTooLarge, "too large")) { _, _, _ in Sink() }
        }
    }
}
