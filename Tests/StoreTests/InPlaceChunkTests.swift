import CLinuxShims
import Foundation
import Glibc
import OpenSSLCrypto
import MinihostTesting
import Testing
@testable import Store

/// Chunks written straight into the session file, and every way a client
/// can stray from equal chunks: each must still give the exact bytes.
@Suite struct InPlaceChunkTests {
    let owner = Owner(kind: .user, id: "alice")
    let slot = 4096

    func data(_ count: Int, seed: UInt8 = 0) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 11) ^ seed }
    }

    func open(_ store: MinihostStore, size: Int) throws -> UploadSession {
        try store.openSession(SessionRequest(owner: owner, fileName: "v.bin", declaredSize: Int64(size)), maxSize: 1 << 30)
    }

    /// Sends `bytes` as chunk `index`, announcing `expected` bytes; returns whether it went in place.
    @discardableResult
    func send(_ store: MinihostStore, _ session: UploadSession, _ index: Int, _ bytes: ArraySlice<UInt8>,
              expected: Int? = nil) throws -> Bool {
        let writer = try store.makeChunkWriter(sessionId: session.id, index: Int64(index),
                                               expectedSize: Int64(expected ?? bytes.count))
        let inPlace = writer.isInPlace
        try Array(bytes).withUnsafeBytes { try writer.write($0) }
        try store.acceptChunk(writer)
        return inPlace
    }

    func finish(_ store: MinihostStore, _ session: UploadSession) throws -> Upload {
        guard case .completed(let upload) = try store.finishSession(id: session.id, owner: owner) else {
            throw StorageError(.invalid, "finish did not complete")
        }
        return upload
    }

    func stored(_ store: MinihostStore, _ upload: Upload) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: store.blobs.path(for: upload.sha256))))
    }

    func inode(_ path: String) -> UInt64? {
        var info = stat()
        return stat(path, &info) == 0 ? UInt64(info.st_ino) : nil
    }

    /// Whether this file system can drop a leading range (ext4, XFS).
    func canCollapse(in folder: String) -> Bool {
        let path = folder + "/collapse-probe"
        let descriptor = Glibc.open(path, O_RDWR | O_CREAT, 0o600)
        defer { close(descriptor); unlink(path) }
        var block = [UInt8](repeating: 1, count: 3 * 65536)
        guard write(descriptor, &block, block.count) == block.count else { return false }
        return minihost_collapse_range(descriptor, 0, 65536) == 0
    }

    @Test func equalChunksInAnyOrderBecomeTheBlobWithoutACopy() throws {
        let fixture = try TemporaryStore()
        let bytes = data(10_000)
        let session = try open(fixture.store, size: bytes.count)
        // The first chunk to arrive fixes the slot size, so it must be a full one.
        for index in [1, 2, 0] {
            let start = index * slot
            #expect(try send(fixture.store, session, index, bytes[start..<min(bytes.count, start + slot)], expected: index == 2 ? nil : slot))
        }
        #expect(try fixture.store.chunks(ofSession: session.id).allSatisfy { $0.fileOffset == $0.chunkIndex * Int64(slot) })
        let sessionFile = inode(fixture.store.sessionDataPath(session.id))
        let upload = try finish(fixture.store, session)
        #expect(try upload.sha256 == SHA256Hasher.hexDigest(of: bytes))
        #expect(try stored(fixture.store, upload) == bytes)
        #expect(inode(fixture.store.blobs.path(for: upload.sha256)) == sessionFile)
        #expect(!FileManager.default.fileExists(atPath: fixture.store.sessionFolder(session.id)))
        #expect(fixture.temporaryFiles().isEmpty)
    }

    /// Sends `bytes` in slot-sized chunks counted from 1, out of order; returns the session.
    func sendCountedFromOne(_ store: MinihostStore, _ bytes: [UInt8]) throws -> UploadSession {
        let session = try open(store, size: bytes.count)
        for index in [2, 4, 1, 3] {
            let start = (index - 1) * slot
            #expect(try send(store, session, index, bytes[start..<min(bytes.count, start + slot)], expected: index == 4 ? nil : slot))
        }
        return session
    }

    @Test func chunksCountedFromOneLoseTheEmptyFirstSlot() throws {
        let fixture = try TemporaryStore()
        let bytes = data(3 * slot + 100)
        let session = try sendCountedFromOne(fixture.store, bytes)
        let sessionFile = inode(fixture.store.sessionDataPath(session.id))
        try #require(canCollapse(in: fixture.store.sessionFolder(session.id)),
                     "the temporary folder's file system must support FALLOC_FL_COLLAPSE_RANGE (ext4, XFS)")
        let upload = try finish(fixture.store, session)
        #expect(try stored(fixture.store, upload) == bytes)
        #expect(try upload.sha256 == SHA256Hasher.hexDigest(of: bytes))
        #expect(inode(fixture.store.blobs.path(for: upload.sha256)) == sessionFile)
    }

    @Test func withoutCollapseChunksCountedFromOneAreCopied() throws {
        // tmpfs has fallocate but not FALLOC_FL_COLLAPSE_RANGE.
        let fixture = try TemporaryStore(parent: "/dev/shm")
        let bytes = data(3 * slot + 100)
        let session = try sendCountedFromOne(fixture.store, bytes)
        let sessionFile = inode(fixture.store.sessionDataPath(session.id))
        try #require(!canCollapse(in: fixture.store.sessionFolder(session.id)), "/dev/shm is expected to be tmpfs")
        let upload = try finish(fixture.store, session)
        #expect(try stored(fixture.store, upload) == bytes)
        #expect(try upload.sha256 == SHA256Hasher.hexDigest(of: bytes))
        #expect(inode(fixture.store.blobs.path(for: upload.sha256)) != sessionFile)
        #expect(!FileManager.default.fileExists(atPath: fixture.store.sessionFolder(session.id)))
    }

    @Test func aResentChunkNeverOverwritesAcknowledgedBytes() throws {
        let fixture = try TemporaryStore()
        let first = data(2 * slot), second = data(2 * slot, seed: 0x5A)
        let session = try open(fixture.store, size: first.count)
        try send(fixture.store, session, 0, first[0..<slot])
        try send(fixture.store, session, 1, first[slot...])
        // The same bytes again: acknowledged, and the chunk stays in place.
        #expect(try !send(fixture.store, session, 1, first[slot...]))
        #expect(try fixture.store.chunks(ofSession: session.id).allSatisfy { $0.fileOffset != nil })
        // Different bytes: they win, from a file of their own.
        #expect(try !send(fixture.store, session, 1, second[slot...]))
        #expect(try fixture.store.chunks(ofSession: session.id).last?.fileOffset == nil)
        let upload = try finish(fixture.store, session)
        #expect(try stored(fixture.store, upload) == Array(first[0..<slot] + second[slot...]))
        #expect(fixture.temporaryFiles().isEmpty)
    }

    @Test func irregularAndOversizedChunksStillAssemble() throws {
        let fixture = try TemporaryStore()
        let bytes = data(3000 + 5000 + 2000 + 3500)
        let session = try open(fixture.store, size: bytes.count)
        #expect(try send(fixture.store, session, 0, bytes[0..<3000]))  // fixes the slot at 3000
        #expect(try !send(fixture.store, session, 1, bytes[3000..<8000]))  // announced larger: own file
        #expect(try send(fixture.store, session, 2, bytes[8000..<10_000]))  // smaller: in place, leaves a gap
        // Announced as fitting, then larger than its slot: moved to its own file mid-way.
        let writer = try fixture.store.makeChunkWriter(sessionId: session.id, index: 3, expectedSize: 3000)
        #expect(writer.isInPlace)
        try Array(bytes[10_000...]).withUnsafeBytes { try writer.write($0) }
        #expect(!writer.isInPlace)
        try fixture.store.acceptChunk(writer)
        let upload = try finish(fixture.store, session)
        #expect(try stored(fixture.store, upload) == bytes)
        #expect(fixture.temporaryFiles().isEmpty)
    }

    @Test func finishSealsTheFileAgainstAStrayWriter() throws {
        let fixture = try TemporaryStore()
        let bytes = data(2 * slot + 1000)
        let session = try open(fixture.store, size: bytes.count)
        try send(fixture.store, session, 0, bytes[0..<slot])
        try send(fixture.store, session, 1, bytes[slot..<2 * slot])
        try send(fixture.store, session, 2, bytes[(2 * slot)...])
        // A chunk past the end, still arriving when finish runs.
        let stray = try fixture.store.makeChunkWriter(sessionId: session.id, index: 3, expectedSize: 500)
        #expect(stray.isInPlace)
        try data(200, seed: 9).withUnsafeBytes { try stray.write($0) }
        let upload = try finish(fixture.store, session)
        #expect(try stored(fixture.store, upload) == bytes)
        #expect(throws: StorageError.self) { try data(200).withUnsafeBytes { try stray.write($0) } }
        #expect(throws: StorageError.self) { try fixture.store.acceptChunk(stray) }
    }

    @Test func aRestartKeepsAcknowledgedChunksAndASecondProcessWritesItsOwnFiles() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("minihost-test-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bytes = data(4 * slot)
        var session: UploadSession!
        do {
            let before = try MinihostStore(directory: DataDirectory(root))
            session = try open(before, size: bytes.count)
            #expect(try send(before, session, 0, bytes[0..<slot]))
            #expect(try send(before, session, 2, bytes[(2 * slot)..<(3 * slot)]))
            // Another process on the same folder while this one runs: no in-place writes.
            let other = try MinihostStore(directory: DataDirectory(root))
            #expect(try !send(other, session, 1, bytes[slot..<(2 * slot)]))
        }
        let after = try MinihostStore(directory: DataDirectory(root))
        #expect(try send(after, session, 3, bytes[(3 * slot)...]))
        let upload = try finish(after, session)
        #expect(try stored(after, upload) == bytes)
    }

    /// Writes `bytes` as the next append (tus), as a client sends it.
    func append(_ store: MinihostStore, _ session: UploadSession, _ bytes: ArraySlice<UInt8>) throws {
        let position = try store.appendPosition(ofSession: session.id)
        let writer = try store.makeAppendWriter(sessionId: session.id, index: position.index, offset: position.offset,
                                                capacity: session.declaredSize - position.offset)
        #expect(writer.isInPlace)
        for start in stride(from: bytes.startIndex, to: bytes.endIndex, by: 65536) {
            try Array(bytes[start..<min(bytes.endIndex, start + 65536)]).withUnsafeBytes { try writer.write($0) }
        }
        try store.acceptChunk(writer)
    }

    @Test func theAppendPositionFollowsChunksInPlaceAndInFilesOfTheirOwn() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("minihost-test-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let sizes = [70_000, 70_000, 4096, 70_000, 70_123]
        let bytes = data(sizes.reduce(0, +))
        let first = try MinihostStore(directory: DataDirectory(root))
        let session = try open(first, size: bytes.count)
        // Another process on the same folder: its appends go to files of their own.
        let other = try MinihostStore(directory: DataDirectory(root))
        var offset = 0
        for (step, size) in sizes.enumerated() {
            let store = step == 1 || step == 4 ? other : first
            let position = try store.appendPosition(ofSession: session.id)
            #expect(position.offset == Int64(offset) && position.index == Int64(step))
            let writer = try store.makeAppendWriter(sessionId: session.id, index: position.index, offset: position.offset,
                                                    capacity: session.declaredSize - position.offset)
            try Array(bytes[offset..<(offset + size)]).withUnsafeBytes { try writer.write($0) }
            try store.acceptChunk(writer)
            offset += size
        }
        // The last chunk has no place in the session file: the position adds up the records.
        let end = try first.appendPosition(ofSession: session.id)
        #expect(end.offset == Int64(bytes.count) && end.index == Int64(sizes.count))
        #expect(try stored(first, try finish(first, session)) == bytes)
    }

    /// Finishes the session, checks the upload holds `bytes` under their
    /// SHA-256, and returns how many bytes the running hash read back.
    func finishReadingBack(_ store: MinihostStore, _ session: UploadSession, expecting bytes: [UInt8]) throws -> Int64 {
        let state = try #require(store.sessionFiles.existingState(for: session.id))
        let upload = try finish(store, session)
        #expect(upload.sha256 == (try SHA256Hasher.hexDigest(of: bytes)))
        #expect(try stored(store, upload) == bytes)
        return state.bytesReadBack
    }

    @Test func appendsInOrderAreHashedAsWrittenNotReadBack() throws {
        let fixture = try TemporaryStore()
        // Through the helper thread (over 1 MiB) and inline (under), aligned and not.
        let sizes = [3 << 19, 5000, 1 << 20, 70_000, 2 << 20]
        let bytes = data(sizes.reduce(0, +))
        let session = try open(fixture.store, size: bytes.count)
        var offset = 0
        for size in sizes {
            try append(fixture.store, session, bytes[offset..<(offset + size)])
            offset += size
        }
        #expect(try finishReadingBack(fixture.store, session, expecting: bytes) == 0)
    }

    @Test func chunksOutOfOrderAreReadBackForTheSameHash() throws {
        let fixture = try TemporaryStore()
        let bytes = data(4 * slot)
        let session = try open(fixture.store, size: bytes.count)
        for index in [0, 2, 1, 3] { try send(fixture.store, session, index, bytes[(index * slot)..<((index + 1) * slot)]) }
        // 0 and 1 were hashed as written; 2 came before its turn, and 3
        // while the pass that read 2 back may still have been running.
        #expect(try finishReadingBack(fixture.store, session, expecting: bytes) >= Int64(slot))
    }

    @Test func theRunningHashFollowsAcknowledgedChunks() throws {
        let fixture = try TemporaryStore()
        let bytes = data(4 * slot)
        let session = try open(fixture.store, size: bytes.count)
        for index in [1, 3, 0] { try send(fixture.store, session, index, bytes[(index * slot)..<((index + 1) * slot)]) }
        let state = try #require(fixture.store.sessionFiles.existingState(for: session.id))
        // Chunk 2 is missing, so the hash stops after chunk 1; it started at
        // chunk 1 first, then again from 0 when chunk 0 came.
        let progress = try #require(state.seal())
        #expect(progress.start == 0 && progress.end == Int64(2 * slot))
        #expect(progress.spans.map(\.index) == [0, 1])
    }

    /// Parallel lanes: chunk 1 starts while chunk 0 is still being written.
    /// It waits for chunk 0 and then hashes its bytes as they are written,
    /// so nothing is read back.
    @Test(.timeLimit(.minutes(1))) func aChunkBehindOneInFlightWaitsAndIsHashedAsWritten() throws {
        let fixture = try TemporaryStore()
        let store = fixture.store
        let bytes = data(3 * slot)
        let session = try open(store, size: bytes.count)
        let first = try store.makeChunkWriter(sessionId: session.id, index: 0, expectedSize: Int64(slot))
        try Array(bytes[0..<(slot / 2)]).withUnsafeBytes { try first.write($0) }
        let events = LockedList<String>()
        let second = bytes[slot..<(2 * slot)]
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            events.append((try? send(store, session, 1, second)) == true ? "1 in place" : "1 failed")
            done.signal()
        }
        // Chunk 1 can't take its slot before chunk 0 is acknowledged (or 1 s passed).
        let early = done.wait(timeout: .now() + 0.2)
        #expect(early == .timedOut)
        try Array(bytes[(slot / 2)..<slot]).withUnsafeBytes { try first.write($0) }
        try store.acceptChunk(first)
        events.append("0 acknowledged")
        if early == .timedOut { done.wait() }
        #expect(events.values == ["0 acknowledged", "1 in place"])
        try send(store, session, 2, bytes[(2 * slot)...])
        #expect(try finishReadingBack(store, session, expecting: bytes) == 0)
    }

    /// A chunk before it that stalls holds the next one up only for the
    /// configured wait; that one is then read back, as any chunk out of turn.
    @Test(.timeLimit(.minutes(1))) func aStalledChunkBeforeHoldsTheNextOnlyForTheWait() throws {
        let fixture = try TemporaryStore(configuration: StoreConfiguration(chunkHashWait: .milliseconds(200)))
        let store = fixture.store
        let bytes = data(3 * slot)
        let session = try open(store, size: bytes.count)
        let stalled = try store.makeChunkWriter(sessionId: session.id, index: 0, expectedSize: Int64(slot))
        let started = Date()
        #expect(try send(store, session, 1, bytes[slot..<(2 * slot)]))
        #expect(Date().timeIntervalSince(started) >= 0.2)
        try Array(bytes[0..<slot]).withUnsafeBytes { try stalled.write($0) }
        try store.acceptChunk(stalled)
        try send(store, session, 2, bytes[(2 * slot)...])
        #expect(try finishReadingBack(store, session, expecting: bytes) >= Int64(slot))
    }
}
