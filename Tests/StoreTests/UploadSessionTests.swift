import Foundation
import OpenSSLCrypto
import MinihostTesting
import Testing
@testable import Store

@Suite struct UploadSessionTests {
    let owner = Owner(kind: .user, id: "alice")

    func chunk(_ fixture: TemporaryStore, _ bytes: ArraySlice<UInt8>) throws -> CompletedBlob {
        let writer = try fixture.store.blobs.makeWriter()
        try Array(bytes).withUnsafeBytes { try writer.write($0) }
        return try writer.finish()
    }

    func data(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) } }

    @Test func chunksInAnyOrderAndResentAssembleToTheExactBytes() throws {
        let fixture = try TemporaryStore()
        let bytes = data(10_000)
        let session = try fixture.store.openSession(SessionRequest(owner: owner, fileName: "v.mp4", declaredSize: 10_000),
                                                    maxSize: 1 << 20)
        for index in [2, 0, 1, 1] {  // out of order, chunk 1 twice
            let start = index * 4000, end = min(10_000, start + 4000)
            try fixture.store.acceptChunk(sessionId: session.id, index: Int64(index), file: chunk(fixture, bytes[start..<end]))
        }
        guard case .completed(let upload) = try fixture.store.finishSession(id: session.id, owner: owner) else {
            Issue.record("not completed"); return
        }
        #expect(upload.size == 10_000)
        #expect(try upload.sha256 == SHA256Hasher.hexDigest(of: bytes))
        #expect(try Data(contentsOf: URL(fileURLWithPath: fixture.store.blobs.path(for: upload.sha256))) == Data(bytes))
        #expect(fixture.temporaryFiles().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: fixture.store.sessionFolder(session.id)))
        // Finishing again answers the same upload.
        guard case .completed(let again) = try fixture.store.finishSession(id: session.id, owner: owner) else {
            Issue.record("second finish did not answer the upload"); return
        }
        #expect(again.id == upload.id)
    }

    @Test func theDeclaredSizeIsEnforced() throws {
        let fixture = try TemporaryStore()
        let session = try fixture.store.openSession(SessionRequest(owner: owner, fileName: "f", declaredSize: 100), maxSize: 1000)
        try fixture.store.acceptChunk(sessionId: session.id, index: 1, file: chunk(fixture, data(60)[...]))
        #expect(throws: StorageError.self) {  // 60 + 50 > 100
            try fixture.store.acceptChunk(sessionId: session.id, index: 2, file: chunk(fixture, data(50)[...]))
        }
        #expect(throws: StorageError.self) {  // index past the size
            try fixture.store.acceptChunk(sessionId: session.id, index: 101, file: chunk(fixture, data(1)[...]))
        }
        try fixture.store.acceptChunk(sessionId: session.id, index: 3, file: chunk(fixture, data(20)[...]))
        do {
            _ = try fixture.store.finishSession(id: session.id, owner: owner)
            Issue.record("finish should fail")
        } catch let error as StorageError {
            #expect(error.code == .invalid && error.detail.contains("missing chunks: 2"))
        }
        try fixture.store.acceptChunk(sessionId: session.id, index: 2, file: chunk(fixture, data(10)[...]))
        do {
            _ = try fixture.store.finishSession(id: session.id, owner: owner)
            Issue.record("finish should fail")
        } catch let error as StorageError {
            #expect(error.detail.contains("received 90 of 100"))
        }
        #expect(fixture.temporaryFiles().isEmpty, "refused chunks leave nothing behind")
        for size: Int64 in [0, -1, 1001] {
            #expect(throws: StorageError.self) {
                try fixture.store.openSession(SessionRequest(owner: owner, fileName: "f", declaredSize: size), maxSize: 1000)
            }
        }
    }

    @Test func concurrentFinishesMakeOneUpload() throws {
        let fixture = try TemporaryStore()
        let bytes = data(3 << 20)
        let session = try fixture.store.openSession(SessionRequest(owner: owner, fileName: "f", declaredSize: Int64(bytes.count)),
                                                    maxSize: 1 << 30)
        for index in 0..<3 {
            try fixture.store.acceptChunk(sessionId: session.id, index: Int64(index),
                                          file: chunk(fixture, bytes[(index << 20)..<((index + 1) << 20)]))
        }
        let results = LockedList<Result<SessionFinish, Error>>()
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            results.append(Result { try fixture.store.finishSession(id: session.id, owner: owner) })
        }
        // Every caller gets the upload or "in progress", never an error.
        let outcomes = try results.values.map { try $0.get() }
        let completed = outcomes.compactMap { outcome -> String? in
            if case .completed(let upload) = outcome { return upload.id }
            return nil
        }
        #expect(!completed.isEmpty && Set(completed).count == 1)
        let stored = try #require(try fixture.store.upload(id: completed[0]))
        #expect(try fixture.store.finishSession(id: session.id, owner: owner) == .completed(stored))
        let rows = try fixture.store.read { try Upload.fetchCount($0) }
        #expect(rows == 1)
    }

    @Test func acknowledgedChunksSurviveARestart() throws {
        let fixture = try TemporaryStore()
        let bytes = data(5000)
        let session = try fixture.store.openSession(SessionRequest(owner: owner, fileName: "f", declaredSize: 5000), maxSize: 10_000)
        try fixture.store.acceptChunk(sessionId: session.id, index: 0, file: chunk(fixture, bytes[0..<2500]))
        // A new process opens the same data folder.
        let restarted = try MinihostStore(directory: DataDirectory(fixture.root))
        let writer = try restarted.blobs.makeWriter()
        try Array(bytes[2500...]).withUnsafeBytes { try writer.write($0) }
        try restarted.acceptChunk(sessionId: session.id, index: 1, file: try writer.finish())
        guard case .completed(let upload) = try restarted.finishSession(id: session.id, owner: owner) else {
            Issue.record("not completed"); return
        }
        #expect(upload.sha256 == (try SHA256Hasher.hexDigest(of: bytes)))
    }

    @Test func quotaCountsStoredAndReservedBytes() throws {
        let fixture = try TemporaryStore()
        _ = try fixture.upload(data(400), owner: owner)
        _ = try fixture.store.openSession(SessionRequest(owner: owner, fileName: "a", declaredSize: 500), maxSize: 10_000, quotaBytes: 1000)
        do {
            _ = try fixture.store.openSession(SessionRequest(owner: owner, fileName: "b", declaredSize: 101), maxSize: 10_000, quotaBytes: 1000)
            Issue.record("quota not enforced")
        } catch let error as StorageError {
            #expect(error.code == .quotaExceeded)
        }
        _ = try fixture.store.openSession(SessionRequest(owner: owner, fileName: "c", declaredSize: 100), maxSize: 10_000, quotaBytes: 1000)
    }

    @Test func expiredSessionsAndTheirChunksAreSwept() throws {
        let fixture = try TemporaryStore()
        let session = try fixture.store.openSession(SessionRequest(owner: owner, fileName: "f", declaredSize: 10), maxSize: 100,
                                                    lifetime: 60)
        try fixture.store.acceptChunk(sessionId: session.id, index: 0, file: chunk(fixture, data(5)[...]))
        #expect(try fixture.store.expireSessions() == 0)
        #expect(try fixture.store.expireSessions(now: Date().addingTimeInterval(120)) == 1)
        #expect(!FileManager.default.fileExists(atPath: fixture.store.sessionFolder(session.id)))
        #expect(throws: StorageError.self) {
            try fixture.store.acceptChunk(sessionId: session.id, index: 1, file: chunk(fixture, data(5)[...]))
        }
        #expect(try fixture.store.session(id: session.id) == nil)
    }

    @Test func anotherOwnerCannotFinish() throws {
        let fixture = try TemporaryStore()
        let session = try fixture.store.openSession(SessionRequest(owner: owner, fileName: "f", declaredSize: 5), maxSize: 100)
        try fixture.store.acceptChunk(sessionId: session.id, index: 0, file: chunk(fixture, data(5)[...]))
        #expect(throws: StorageError.self) { try fixture.store.finishSession(id: session.id, owner: Owner(kind: .user, id: "bob")) }
    }
}
