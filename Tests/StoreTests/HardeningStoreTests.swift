import Foundation
import GRDB
import MinihostTesting
import Testing
@testable import Store

@Suite(.serialized) struct HardeningStoreTests {
    let owner = Owner(kind: .user, id: "alice")

    @Test func commitsAreSynchronousFull() throws {
        let fixture = try TemporaryStore()
        // The writer is the connection that commits (read-only ones never sync).
        #expect(try fixture.store.database.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA synchronous") } == 2)
    }

    @Test func theDatabaseIsTheOwnersAlone() throws {
        let fixture = try TemporaryStore()
        _ = try fixture.upload([1, 2, 3])
        for suffix in ["", "-wal", "-shm"] {
            var info = stat()
            #expect(stat(fixture.store.directory.databasePath + suffix, &info) == 0)
            #expect(info.st_mode & 0o077 == 0, "minihost.sqlite\(suffix) is \(String(info.st_mode & 0o777, radix: 8))")
        }
        // Folders from before are tightened when the store opens.
        chmod(fixture.store.directory.databasePath, 0o644)
        _ = try MinihostStore(directory: fixture.store.directory)
        var info = stat()
        stat(fixture.store.directory.databasePath, &info)
        #expect(info.st_mode & 0o777 == 0o600)
    }

    @Test func chunkIndexesAreBoundedByTheSessionsGeometry() throws {
        let fixture = try TemporaryStore()
        let small = try fixture.store.openSession(SessionRequest(owner: owner, fileName: "f", declaredSize: 5), maxSize: 100)
        let large = try fixture.store.openSession(SessionRequest(owner: owner, fileName: "f", declaredSize: 1 << 30), maxSize: 1 << 31)
        #expect(fixture.store.maxChunkIndex(of: small) == 5)
        #expect(fixture.store.maxChunkIndex(of: large) == 10_000)
        for index: Int64 in [-1, 6, 50_000_000, .max] {
            #expect(throws: StorageError.self) { try fixture.store.checkChunk(index: index, of: small) }
        }
        #expect(throws: StorageError.self) { try fixture.store.checkChunk(index: 10_001, of: large) }
        try fixture.store.checkChunk(index: 10_000, of: large)
        // Refused under the write lock too, before the row is written.
        let writer = try fixture.store.blobs.makeWriter()
        try [UInt8](repeating: 1, count: 3).withUnsafeBytes { try writer.write($0) }
        #expect(throws: StorageError.self) {
            try fixture.store.acceptChunk(sessionId: large.id, index: 50_000_000, file: try writer.finish())
        }
        let empty = try fixture.store.blobs.makeWriter()
        #expect(throws: StorageError.self) { try fixture.store.acceptChunk(sessionId: small.id, index: 0, file: try empty.finish()) }
        #expect(try fixture.store.chunks(ofSession: large.id).isEmpty && fixture.temporaryFiles().isEmpty)
    }

    @Test func missingChunksAreNamedBrieflyWithoutWalkingTheIndexRange() {
        func chunks(_ indices: [Int64]) -> [UploadSessionChunk] {
            indices.map { UploadSessionChunk(sessionId: "s", chunkIndex: $0, size: 1, sha256: nil, fileOffset: nil) }
        }
        #expect(MinihostStore.missingChunks(chunks([0, 1, 2]), naming: 20).count == 0)
        #expect(MinihostStore.missingChunks(chunks([1, 2, 3]), naming: 20).count == 0)
        #expect(MinihostStore.missingChunks(chunks([0, 3, 5]), naming: 20).description == "1,2,4")
        let huge = MinihostStore.missingChunks(chunks([0, Int64.max - 1]), naming: 3)
        #expect(huge.count == Int64.max - 2 && huge.description == "1,2,3,… (\(Int64.max - 2) in all)")
    }

    @Test func aSessionBeingAssembledIsNotExpiredUnderTheFinisher() throws {
        let fixture = try TemporaryStore()
        let session = try fixture.store.openSession(SessionRequest(owner: owner, fileName: "f", declaredSize: 5), maxSize: 100,
                                                    lifetime: 60)
        try fixture.store.database.write { db in
            try db.execute(sql: "UPDATE minihost_upload_sessions SET state = 'assembling', assembling_since = ? WHERE id = ?",
                           arguments: [Date(), session.id])
        }
        let later = Date().addingTimeInterval(120)
        #expect(try fixture.store.expireSessions(now: later) == 0)
        // A claim older than the takeover time is a crashed finisher's: it goes.
        #expect(try fixture.store.expireSessions(now: later.addingTimeInterval(MinihostStore.assemblyTakeover)) == 1)
    }

    @Test func aReleasedBlobIsNeverUnlinkedUnderAnotherWritersNewRow() throws {
        let fixture = try TemporaryStore()
        let bytes = Array("shared bytes".utf8)
        let first = try fixture.upload(bytes)
        // A second process on the same data folder.
        let other = try MinihostStore(directory: fixture.store.directory)
        let otherUpload = LockedList<Upload?>()
        MinihostStore.beforeBlobUnlink = { _ in
            let done = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                let writer = try! other.blobs.makeWriter()
                try! bytes.withUnsafeBytes { try writer.write($0) }
                otherUpload.append(try? other.commitUpload(try! writer.finish(), owner: .apiClient("app"), fileName: "g",
                                                          contentType: "text/plain"))
                done.signal()
            }
            // The other writer must wait for our lock; give it time to try.
            _ = done.wait(timeout: .now() + 0.5)
        }
        defer { MinihostStore.beforeBlobUnlink = nil }
        try fixture.store.purge(uploadId: first.id, owner: first.owner)
        MinihostStore.beforeBlobUnlink = nil
        while otherUpload.values.isEmpty { usleep(10_000) }
        let upload = try #require(otherUpload.values.first ?? nil)
        #expect(FileManager.default.fileExists(atPath: fixture.store.blobs.path(for: upload.sha256)))
        #expect(try fixture.store.checkIntegrity().isEmpty)
    }
}

@Suite struct FinishTakeoverTests {
    let owner = Owner(kind: .user, id: "alice")

    func claimedSession(_ fixture: TemporaryStore, by claimer: String) throws -> UploadSession {
        let session = try fixture.store.openSession(SessionRequest(owner: owner, fileName: "f", declaredSize: 3), maxSize: 100)
        let writer = try fixture.store.blobs.makeWriter()
        try [UInt8]([1, 2, 3]).withUnsafeBytes { try writer.write($0) }
        try fixture.store.acceptChunk(sessionId: session.id, index: 0, file: try writer.finish())
        try fixture.store.database.write { db in
            try db.execute(sql: """
                UPDATE minihost_upload_sessions SET state = 'assembling', assembling_since = ?, assembling_by = ? WHERE id = ?
                """, arguments: [Date(), claimer, session.id])
        }
        return session
    }

    @Test func aClaimOfALiveProcessMakesOthersWait() throws {
        let fixture = try TemporaryStore()
        let session = try claimedSession(fixture, by: ProcessIdentity.current)
        #expect(try fixture.store.finishSession(id: session.id, owner: owner) == .inProgress)
    }

    @Test func aClaimOfADeadProcessIsTakenOverAtOnce() throws {
        let fixture = try TemporaryStore()
        // This machine's boot, a pid that can't be running (above pid_max) or a reused one.
        let parts = ProcessIdentity.current.split(separator: ":")
        for claimer in ["\(parts[0]):4194304:1", "\(parts[0]):\(getpid()):1"] {
            let session = try claimedSession(fixture, by: claimer)
            guard case .completed(let upload) = try fixture.store.finishSession(id: session.id, owner: owner) else {
                Issue.record("a dead claimer's session was not taken over (\(claimer))")
                continue
            }
            #expect(upload.size == 3)
        }
        #expect(ProcessIdentity.isAlive(ProcessIdentity.current))
        #expect(ProcessIdentity.isAlive("another-boot:1:1"))
    }
}

@Suite struct ConcurrentOpenTests {
    @Test func storesOpenedAtOnceOnANewFolderAllMigrateIt() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("minihost-open-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let failures = LockedList<String>()
        DispatchQueue.concurrentPerform(iterations: 6) { _ in
            do { _ = try MinihostStore(directory: DataDirectory(root)).clients.list() } catch { failures.append("\(error)") }
        }
        #expect(failures.values.isEmpty)
    }
}
