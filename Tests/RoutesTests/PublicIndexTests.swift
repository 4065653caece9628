import Foundation
import HTTPCore
import MinihostTesting
import Testing
@testable import Routes
@testable import Store

/// nginx's index of public files, as the workers write it.
@Suite struct PublicIndexTests {
    /// An upload of `bytes` with `fileName` and `contentType`, published.
    func published(_ fixture: RouteFixture, _ credential: String, _ fileName: String, _ contentType: String) throws -> String {
        let body = MultipartBody(boundary: "testBoundary").file("file", fileName: fileName, contentType: contentType, Array("x".utf8))
        let response = fixture.send("POST", "/api/minihost/upload", headers: [
            ("Authorization", "Bearer \(credential)"), ("Content-Type", body.contentType),
            ("Content-Length", String(body.bytes.count)),
        ], body: body.bytes)
        let id = try #require(response.json["uploadId"] as? String)
        let publish = fixture.postJSON("/api/minihost/publishing_upload", ["uploadId": id, "status": "published"], credential: credential)
        #expect(publish.status == .ok)
        return id
    }

    /// One map file of the current index as key → value.
    func map(_ fixture: RouteFixture, _ file: String) throws -> [String: String] {
        let text = try String(contentsOfFile: fixture.store.publicTree.currentIndexPath + "/" + file, encoding: .utf8)
        var entries: [String: String] = [:]
        for line in text.split(separator: "\n") {
            // "key" "value"; with \" and \\ escapes.
            var fields: [String] = []
            var current = ""
            var quoted = false, escaped = false
            for character in line {
                if escaped { current.append(character); escaped = false }
                else if character == "\\" { escaped = true }
                else if character == "\"" { if quoted { fields.append(current); current = "" }; quoted.toggle() }
                else if quoted { current.append(character) }
            }
            try #require(fields.count == 2)
            entries[fields[0]] = fields[1]
        }
        return entries
    }

    @Test func entriesHoldTheRoutesOwnAnswersPerOrigin() throws {
        let fixture = try RouteFixture()
        let credential = try fixture.client()
        let text = try published(fixture, credential, "notes \"q\" \\ ü.txt", "text/plain; charset=utf-8")
        let page = try published(fixture, credential, "page.html", "text/html")
        let dollar = try published(fixture, credential, "price$.txt", "text/plain")
        let index = try PublicIndex(context: fixture.context)
        #expect(try index.refresh())
        #expect(try !index.refresh())  // nothing changed since

        let tree = try #require(index.layout.trees.first { $0.kind == .cache })
        let keys = try map(fixture, tree.keysFile), codes = try map(fixture, tree.codesFile)
        let parameters = try map(fixture, tree.parametersFile)
        let types = try String(contentsOfFile: fixture.store.publicTree.currentIndexPath + "/" + tree.typesFile, encoding: .utf8)
        let textKey = try #require(keys[text]), pageKey = try #require(keys[page])
        #expect(types.contains("\"text/plain; charset=utf-8\" \(textKey);\n") && types.contains("\"text/html\" \(pageKey);\n"))
        // nginx would read `$` as a variable: left to the worker.
        #expect(keys[dollar] == nil && codes[dollar] == nil)
        // HTML is an attachment on the application's origin and inline on the content origin.
        for (slotIndex, slot) in tree.slots.enumerated() {
            let pageCodes = try #require(codes[page]), textCodes = try #require(codes[text])
            #expect(Array(pageCodes)[slotIndex] == (slot.contentOrigin ? "i" : "a"))
            #expect(Array(textCodes)[slotIndex] == "i")
        }
        // What the route answers, split at the disposition's type.
        let answer = fixture.send("GET", "/minihost/cache/\(text)")
        let disposition = try #require(answer.headers["Content-Disposition"])
        let textParameters = try #require(parameters[text])
        #expect(disposition == "inline" + textParameters)
        #expect(answer.headers["Cache-Control"] == MinihostRoutes.cacheControl)

        // Unpublishing moves the generation; the next index drops the id.
        _ = fixture.postJSON("/api/minihost/publishing_upload", ["uploadId": page, "status": "unpublished"], credential: credential)
        #expect(try index.refresh())
        #expect(try map(fixture, tree.keysFile)[page] == nil)
    }

    @Test func plainLinksAreIndexedForRawAndDownload() throws {
        let fixture = try RouteFixture()
        let upload = try fixture.store.commitUpload(
            { let w = try fixture.store.blobs.makeWriter(); try Array("svg".utf8).withUnsafeBytes { try w.write($0) }; return try w.finish() }(),
            owner: Owner(kind: .user, id: "1"), fileName: "x.svg", contentType: "image/svg+xml") { $0.publicId = "AbCdEfGhIjKlMnOp" }
        let index = try PublicIndex(context: fixture.context)
        try index.refresh()
        let tree = try #require(index.layout.trees.first { $0.kind == .links })
        let publicId = try #require(upload.publicId)
        let codes = try #require(try map(fixture, tree.codesFile)[publicId])
        for (slotIndex, slot) in tree.slots.enumerated() {
            guard slot.route.api == PlainRoutes.api else {
                // Another dialect's route on the same tree: its id shape differs, so never from nginx.
                #expect(Array(codes)[slotIndex] == "-", "\(slot.route.name) \(slot.origin)")
                continue
            }
            let raw = slot.route.path.text.hasPrefix("/s/")
            // SVG runs script: inline only on the content origin, and /d/ always downloads.
            #expect(Array(codes)[slotIndex] == (raw && slot.contentOrigin ? "i" : "a"), "\(slot.route.name) \(slot.origin)")
        }
    }

    @Test func uploaderFilesAreIndexedForFileAndFButNotWithALimit() throws {
        let fixture = try RouteFixture()
        func commit(_ name: String, _ type: String, id: String, maxDownloads: Int? = nil) throws {
            let writer = try fixture.store.blobs.makeWriter()
            try Array(name.utf8).withUnsafeBytes { try writer.write($0) }
            _ = try fixture.store.uploader.commit(try writer.finish(), owner: UploaderStore.anonymous, fileName: name,
                                                  contentType: type, ext: ".x", fileURL: id, maxDownloads: maxDownloads)
        }
        try commit("clip.mp4", "video/mp4", id: "AbCdEfGhIj")
        try commit("page.html", "text/html", id: "KlMnOpQrSt")
        try commit("once.mp4", "video/mp4", id: "UvWxYz0123", maxDownloads: 1)
        let index = try PublicIndex(context: fixture.context)
        try index.refresh()
        let tree = try #require(index.layout.trees.first { $0.kind == .links })
        let codes = try map(fixture, tree.codesFile)
        #expect(codes["UvWxYz0123"] == nil, "a file whose downloads count is never nginx's alone")
        for (id, onApp) in [("AbCdEfGhIj", "i"), ("KlMnOpQrSt", "a")] {
            let code = Array(try #require(codes[id]))
            for (slotIndex, slot) in tree.slots.enumerated() {
                let expected = slot.route.api != UploaderRoutes.api ? "-" : slot.contentOrigin ? "i" : onApp
                #expect(String(code[slotIndex]) == expected, "\(id) \(slot.route.name) \(slot.origin)")
            }
        }
    }

    @Test func aPublicFileRouteMustBeAnUnauthenticatedGetWithOneSafeParameter() {
        let file = PublicFile(tree: .cache, cacheControl: "public")
        let id = ParameterConstraint.characters("abc", count: 3...3, regexClass: "abc", example: "abc")
        for declare in [
            { (group: inout RouteGroup) in group.add("POST", "/f/:id", constraints: ["id": id], publicFile: file) { _ in Response(status: .ok) } },
            { (group: inout RouteGroup) in group.add("GET", "/f/:id", publicFile: file) { _ in Response(status: .ok) } },
            { (group: inout RouteGroup) in group.add("GET", "/f/:id", constraints: ["id": id], auth: .operatorSession, publicFile: file) { _ in Response(status: .ok) } },
        ] {
            var table = RouteTable()
            table.group(.json, limit: .none) { declare(&$0) }
            #expect(throws: RouteDeclarationError.self) { try table.validated() }
        }
    }
}
