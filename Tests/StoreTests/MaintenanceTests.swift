import Foundation
import MinihostTesting
import Testing
@testable import Store

@Suite struct MaintenanceTests {
    @Test func gcRemovesUnreferencedBlobsAndStaleTemporaryFilesOnly() throws {
        let fixture = try TemporaryStore()
        let kept = try fixture.upload(Array("keep".utf8))
        let gone = try fixture.upload(Array("gone".utf8))
        try fixture.store.purge(uploadId: gone.id, owner: gone.owner)
        // An orphan blob, as a crash between placing a blob and committing its row leaves.
        let orphan = try fixture.store.blobs.makeWriter()
        try Array("orphan".utf8).withUnsafeBytes { try orphan.write($0) }
        let completed = try orphan.finish()
        _ = try fixture.store.writeImmediately { _ in try fixture.store.blobs.place(completed) }
        let stale = fixture.root + "/tmp/upload-stale.part"
        _ = FileManager.default.createFile(atPath: stale, contents: Data("x".utf8))
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-7200)], ofItemAtPath: stale)
        let fresh = fixture.root + "/tmp/upload-fresh.part"
        _ = FileManager.default.createFile(atPath: fresh, contents: Data("y".utf8))

        let report = try fixture.store.collectGarbage()
        #expect(report.blobsRemoved == 1)
        #expect(report.temporaryFilesRemoved == 1)
        #expect(FileManager.default.fileExists(atPath: fixture.store.blobs.path(for: kept.sha256)))
        #expect(!FileManager.default.fileExists(atPath: fixture.store.blobs.path(for: completed.sha256)))
        #expect(FileManager.default.fileExists(atPath: fresh))
    }

    @Test func checkFindsACorruptedBlobAndAMissingOne() throws {
        let fixture = try TemporaryStore()
        #expect(try fixture.store.checkIntegrity().isEmpty)
        let damaged = try fixture.upload(Array("damaged".utf8))
        let missing = try fixture.upload(Array("missing".utf8))
        _ = try fixture.upload(Array("fine".utf8))
        try Data("DAMAGED".utf8).write(to: URL(fileURLWithPath: fixture.store.blobs.path(for: damaged.sha256)))
        try FileManager.default.removeItem(atPath: fixture.store.blobs.path(for: missing.sha256))
        let problems = try fixture.store.checkIntegrity()
        #expect(problems.count == 2)
        #expect(problems.contains { $0.kind == .hashMismatch && $0.uploadIds == [damaged.id] })
        #expect(problems.contains { $0.kind == .missingBlob && $0.uploadIds == [missing.id] })
    }

    @Test func idleReadConnectionsCloseAndReopenOnTheNextRead() throws {
        let fixture = try TemporaryStore()
        let upload = try fixture.upload(Array("kept".utf8))
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            _ = try? fixture.store.upload(id: upload.id, owner: .apiClient("app"))
        }
        #expect(fixture.store.closeIdleReaders() >= 1)
        #expect(fixture.store.closeIdleReaders() == 0)
        #expect(try fixture.store.upload(id: upload.id, owner: .apiClient("app"))?.id == upload.id)
        #expect(fixture.store.closeIdleReaders() == 1)
    }

    @Test func readsOneAfterAnotherOnNewThreadsShareOneConnection() throws {
        let fixture = try TemporaryStore()
        let upload = try fixture.upload(Array("kept".utf8))
        fixture.store.closeIdleReaders()
        let store = fixture.store, id = upload.id
        for _ in 0..<8 {
            let thread = Thread { _ = try? store.upload(id: id, owner: .apiClient("app")) }
            thread.start()
            while !thread.isFinished { usleep(1000) }
        }
        #expect(fixture.store.closeIdleReaders() == 1)
    }

    @Test func clientSecretsAreHashedAndCheckedExactly() throws {
        let fixture = try TemporaryStore()
        let secret = try fixture.store.clients.create(key: "app", scopes: ["upload", "download"])
        let stored = try fixture.store.clients.list()
        #expect(stored.count == 1 && stored[0].secretHash != secret && stored[0].scopes == "upload,download")
        #expect(try fixture.store.clients.authenticate(key: "app", secret: secret)?.clientKey == "app")
        #expect(try fixture.store.clients.authenticate(key: "app", secret: secret + "x") == nil)
        #expect(try fixture.store.clients.authenticate(key: "nobody", secret: secret) == nil)
        #expect(try fixture.store.clients.revoke(key: "app"))
        #expect(try fixture.store.clients.authenticate(key: "app", secret: secret) == nil)
        #expect(throws: StorageError.self) { try fixture.store.clients.create(key: "a.b", scopes: ["upload"]) }
        #expect(throws: StorageError.self) { try fixture.store.clients.create(key: "x", scopes: ["admin"]) }
    }

    @Test func secretKeyIsCreatedOnceWithPrivateMode() throws {
        let fixture = try TemporaryStore()
        let first = try fixture.store.directory.loadOrCreateSecretKey()
        #expect(first.count == 32)
        #expect(try fixture.store.directory.loadOrCreateSecretKey() == first)
        let mode = try FileManager.default.attributesOfItem(atPath: fixture.store.directory.secretKeyPath)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }
}

@Suite struct DisplayNameTests {
    @Test(arguments: [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\report.pdf", "report.pdf"),
        ("/", "file"),
        ("..", "file"),
        ("a\u{0}b\u{7}c\r\n.txt", "abc.txt"),
        ("evil\u{202E}gpj.exe", "evilgpj.exe"),
        ("  .hidden  ", "hidden"),
        ("na\"me.txt", "name.txt"),
        ("ünïcødé €.txt", "ünïcødé €.txt"),
    ])
    func sanitizes(raw: String, expected: String) {
        #expect(DisplayName.sanitize(raw) == expected)
    }

    @Test func capsLengthAndKeepsTheExtension() {
        let name = DisplayName.sanitize(String(repeating: "é", count: 1000) + ".tar.gz")
        #expect(name.utf8.count <= 255)
        #expect(name.hasSuffix(".gz"))
    }

    @Test func nilBecomesTheFallback() {
        #expect(DisplayName.sanitize(nil) == "file")
    }
}
