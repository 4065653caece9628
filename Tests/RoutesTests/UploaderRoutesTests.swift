import Foundation
import HTTPCore
import MinihostTesting
import Testing
@testable import Routes
@testable import Store

@Suite struct UploaderRoutesTests {
    private func upload(_ fixture: RouteFixture, _ bytes: [UInt8], fileName: String, query: String = "",
                        headers: [(String, String)] = []) -> Response {
        let body = MultipartBody().file("file", fileName: fileName, bytes)
        return fixture.send("POST", "/api/upload", query: query,
                            headers: headers + [("Content-Type", body.contentType), ("Content-Length", String(body.bytes.count))],
                            body: body.bytes)
    }

    @Test func deleteKeysAreStableUUIDsTiedToTheUploadAndTheServerKey() throws {
        let key = try UploaderDeleteKey.key(for: "upload-1", signingKey: Array(repeating: 1, count: 32))
        #expect(key.range(of: #"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"#,
                          options: .regularExpression) != nil)
        #expect(try UploaderDeleteKey.key(for: "upload-1", signingKey: Array(repeating: 1, count: 32)) == key)
        #expect(try UploaderDeleteKey.key(for: "upload-2", signingKey: Array(repeating: 1, count: 32)) != key)
        #expect(try UploaderDeleteKey.key(for: "upload-1", signingKey: Array(repeating: 2, count: 32)) != key)
        #expect(try UploaderDeleteKey.matches(key.uppercased(), uploadId: "upload-1", signingKey: Array(repeating: 1, count: 32)))
        #expect(try !UploaderDeleteKey.matches(key + "0", uploadId: "upload-1", signingKey: Array(repeating: 1, count: 32)))
    }

    @Test func extensionsAreShortLettersAndDigitsAfterTheLastDot() {
        #expect(UploaderRoutes.fileExtension("clip.MP4") == ".MP4")
        #expect(UploaderRoutes.fileExtension("archive.tar.gz") == ".gz")
        for name in ["noext", ".hidden", "trailing.", "a.ex t", "a.tooooooooolongext", "a.h\u{e9}"] {
            #expect(UploaderRoutes.fileExtension(name) == nil, "\(name)")
        }
        #expect(UploaderRoutes.idPart(of: "AbCdEfGhIj.mp4") == "AbCdEfGhIj")
    }

    @Test func aRefusedExtensionStoresNoByte() throws {
        let fixture = try RouteFixture()
        let refused = upload(fixture, Array(repeating: 1, count: 4096), fileName: "noextension")
        #expect(refused.status == .badRequest && refused.json["message"] as? String == "Bad file extension")
        let temporary = try FileManager.default.contentsOfDirectory(atPath: fixture.store.directory.temporaryPath)
        #expect(temporary.isEmpty)
        #expect(try fixture.store.statistics().uploads == 0)
    }

    @Test func tokenErrorsRenderAsAuthErrors() throws {
        let fixture = try RouteFixture()
        let response = fixture.send("GET", "/api/get_files", headers: [("Authorization", "Bearer nope")])
        #expect(response.status == .unauthorized)
        #expect(response.json["status"] as? String == "error" && response.json["message"] == nil)
        let error = try #require(response.json["auth_error"] as? [String: Any])
        #expect(error["errorId"] as? Int == -4 && error["message"] as? String == "Invalid access token")
        let anonymous = upload(fixture, Array("x".utf8), fileName: "a.txt", headers: [("Authorization", "Bearer nope")])
        #expect(anonymous.status == .ok && anonymous.json["synced"] as? Bool == false)
        #expect((anonymous.json["auth_error"] as? [String: Any])?["errorId"] as? Int == -4)
    }
}
