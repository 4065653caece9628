import Foundation
import OpenSSLCrypto
import MinihostTesting
import Testing
@testable import Store

@Suite struct BlobAndUploadTests {
    @Test func commitPlacesTheBlobAtItsHashAndRecordsTheRow() throws {
        let fixture = try TemporaryStore()
        let upload = try fixture.upload(Array("hello".utf8))
        #expect(upload.sha256 == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        #expect(upload.size == 5)
        #expect(try String(contentsOfFile: fixture.store.blobs.path(for: upload.sha256), encoding: .utf8) == "hello")
        let stored = try #require(try fixture.store.upload(id: upload.id, owner: .apiClient("app")))
        #expect(stored.sha256 == upload.sha256 && stored.size == 5 && stored.state == .ready && stored.fileName == "f.bin")
        #expect(fixture.temporaryFiles().isEmpty)
    }

    /// The download's read decodes by position; it must agree with GRDB's
    /// by-name decoding, with every column set and with every optional NULL.
    @Test func theByPositionReadMatchesTheRecord() throws {
        let fixture = try TemporaryStore()
        let bare = try fixture.upload(Array("bare".utf8))
        let full = try fixture.upload(Array("full".utf8))
        try fixture.store.database.write { db in
            try db.execute(sql: """
                UPDATE minihost_uploads SET purged_at = finished_at, app_payload = '{"a":1}', app_handled_at = created_at,
                    expires_at = created_at, max_downloads = 5, download_count = 2, password_hash = 'h', public_id = 'p'
                WHERE id = ?
                """, arguments: [full.id])
        }
        for id in [bare.id, full.id] {
            let byName = try fixture.store.database.read { try Upload.fetchOne($0, key: id) }
            let byPosition = try fixture.store.upload(id: id, owner: .apiClient("app"))
            #expect(byPosition != nil && byPosition == byName)
        }
        #expect(try Set(full.databaseDictionary.keys) == Set(Upload.selection.split(separator: ",").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }),
                "Upload.selection names every column")
    }

    @Test func anotherOwnerCannotSeeTheUpload() throws {
        let fixture = try TemporaryStore()
        let upload = try fixture.upload(Array("x".utf8))
        #expect(try fixture.store.upload(id: upload.id, owner: .apiClient("other")) == nil)
        #expect(throws: StorageError.self) { try fixture.store.purge(uploadId: upload.id, owner: .apiClient("other")) }
    }

    @Test func identicalContentSharesOneBlobUntilTheLastReferenceGoes() throws {
        let fixture = try TemporaryStore()
        let first = try fixture.upload(Array("same".utf8))
        let second = try fixture.upload(Array("same".utf8))
        #expect(first.blob == second.blob)
        // The duplicate's temporary file is dropped in the background.
        for _ in 0..<100 where !fixture.temporaryFiles().isEmpty { usleep(10_000) }
        #expect(fixture.temporaryFiles().isEmpty)
        let path = fixture.store.blobs.path(for: first.sha256)
        try fixture.store.purge(uploadId: first.id, owner: first.owner)
        #expect(FileManager.default.fileExists(atPath: path), "still referenced by the second upload")
        try fixture.store.purge(uploadId: second.id, owner: second.owner)
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(try fixture.store.upload(id: first.id)?.state == .purged)
    }

    @Test func anAbandonedWriterLeavesNothing() throws {
        let fixture = try TemporaryStore()
        let writer = try fixture.store.blobs.makeWriter()
        try Array(repeating: UInt8(1), count: 1000).withUnsafeBytes { try writer.write($0) }
        #expect(fixture.temporaryFiles().count == 1)
        writer.abandon()
        #expect(fixture.temporaryFiles().isEmpty)
    }

    @Test func followUpsMergeWithoutLosingConcurrentUpdates() throws {
        let fixture = try TemporaryStore()
        let upload = try fixture.upload(Array("meta".utf8))
        let failures = LockedList<String>()
        DispatchQueue.concurrentPerform(iterations: 32) { index in
            do {
                _ = try fixture.store.applyAppDataChange(AppDataChange(payloadPatch: ["k\(index)": index]),
                                                         uploadId: upload.id, owner: upload.owner)
            } catch {
                failures.append("\(error)")
            }
        }
        #expect(failures.values.isEmpty)
        let payload = MinihostStore.decodePayload(try fixture.store.upload(id: upload.id)?.appPayload)
        #expect(payload.count == 32)
        #expect(payload["k31"] as? Int == 31)
    }

    @Test func replacementPurgesTheOldUploadInTheSameTransaction() throws {
        let fixture = try TemporaryStore()
        let old = try fixture.upload(Array("old".utf8))
        let new = try fixture.upload(Array("new".utf8))
        let updated = try fixture.store.applyAppDataChange(
            AppDataChange(payloadPatch: ["v": 2], replacesUploadId: old.id), uploadId: new.id, owner: new.owner)
        #expect(MinihostStore.decodePayload(updated.appPayload)["v"] as? Int == 2)
        #expect(try fixture.store.upload(id: old.id)?.state == .purged)
        #expect(!FileManager.default.fileExists(atPath: fixture.store.blobs.path(for: old.sha256)))
    }

    @Test func aFailedReplacementChangesNothing() throws {
        let fixture = try TemporaryStore()
        let new = try fixture.upload(Array("new".utf8))
        #expect(throws: StorageError.self) {
            try fixture.store.applyAppDataChange(AppDataChange(payloadPatch: ["v": 1], replacesUploadId: "nope"),
                                                 uploadId: new.id, owner: new.owner)
        }
        #expect(try fixture.store.upload(id: new.id)?.appPayload == nil)
    }

    @Test func publishedUploadsAreFoundOnlyWhilePublishedAndReady() throws {
        let fixture = try TemporaryStore()
        let upload = try fixture.upload(Array("pub".utf8))
        #expect(try fixture.store.publishedUpload(id: upload.id) == nil)
        _ = try fixture.store.setPublication(uploadId: upload.id, owner: upload.owner, status: .published)
        #expect(try fixture.store.publishedUpload(id: upload.id)?.id == upload.id)
        _ = try fixture.store.setPublication(uploadId: upload.id, owner: upload.owner, status: .unpublished)
        #expect(try fixture.store.publishedUpload(id: upload.id) == nil)
        _ = try fixture.store.setPublication(uploadId: upload.id, owner: upload.owner, status: .published)
        try fixture.store.purge(uploadId: upload.id, owner: upload.owner)
        #expect(try fixture.store.publishedUpload(id: upload.id) == nil)
    }

    @Test func purgeUnhandledTakesOnlyOldUnhandledUploadsOfTheNamedKind() throws {
        let fixture = try TemporaryStore()
        let stale = try fixture.upload(Array("a".utf8))
        let handled = try fixture.upload(Array("b".utf8))
        // A user's file never has app_handled_at: it must never be a candidate.
        let usersFile = try fixture.upload(Array("c".utf8), owner: Owner(kind: .user, id: "alice"))
        _ = try fixture.store.applyAppDataChange(AppDataChange(handledAt: .set(Date())), uploadId: handled.id, owner: handled.owner)
        let counts = try fixture.store.purgeUnhandled(ownerKind: .apiClient, createdBefore: Date().addingTimeInterval(1))
        #expect(counts.candidates == 1 && counts.purged == 1)
        #expect(try fixture.store.upload(id: stale.id)?.state == .purged)
        #expect(try fixture.store.upload(id: handled.id)?.state == .ready)
        #expect(try fixture.store.upload(id: usersFile.id)?.state == .ready)
        let none = try fixture.store.purgeUnhandled(ownerKind: .apiClient, createdBefore: Date().addingTimeInterval(-3600))
        #expect(none.candidates == 0)
    }
}

@Suite struct BlobWriterTests {
    @Test func largeBlobsWrittenInOddPiecesKeepTheirBytesAndHash() throws {
        let fixture = try TemporaryStore()
        var bytes = [UInt8](repeating: 0, count: 5 * 1024 * 1024 + 12345)
        for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: index &* 2654435761 >> 7) }
        let writer = try fixture.store.blobs.makeWriter()
        var offset = 0
        for size in [1, 999, 1 << 20, 3, 700_001, 2 << 20].cycled(until: bytes.count) {
            let end = min(bytes.count, offset + size)
            try bytes.withUnsafeBytes { try writer.write(UnsafeRawBufferPointer(rebasing: $0[offset..<end])) }
            offset = end
            if offset == bytes.count { break }
        }
        let blob = try writer.finish()
        #expect(blob.size == Int64(bytes.count))
        #expect(blob.sha256 == (try SHA256Hasher.hexDigest(of: bytes)))
        #expect(try Data(contentsOf: URL(fileURLWithPath: blob.temporaryPath)) == Data(bytes))
    }

    @Test func abandoningWhileTheHelperWritesLeavesNothing() throws {
        let fixture = try TemporaryStore()
        let writer = try fixture.store.blobs.makeWriter()
        let chunk = [UInt8](repeating: 7, count: 3 * 1024 * 1024)
        try chunk.withUnsafeBytes { try writer.write($0) }
        writer.abandon()
        #expect(fixture.temporaryFiles().isEmpty)
    }
}

private extension Array where Element == Int {
    /// The sizes repeated until they add up to at least `total`.
    func cycled(until total: Int) -> [Int] {
        var out: [Int] = []
        var sum = 0
        while sum < total { for size in self { out.append(size); sum += size } }
        return out
    }
}
