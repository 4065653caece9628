import CLinuxShims
import Foundation
import Glibc
import MinihostTesting
import OpenSSLCrypto
import Testing
@testable import Store

/// Bytes the helper writes with O_DIRECT where it can and through the page
/// cache where it can't: the file must hold exactly what was submitted.
@Suite struct BackgroundWriterTests {
    static let block = BackgroundWriter.directAlignment

    /// Writes `sizes` (one buffer each) at `offset` into a new file; returns
    /// the file's bytes from `offset` and how many went direct.
    func write(sizes: [Int], offset: Int64, in directory: String) throws -> (bytes: [UInt8], expected: [UInt8], direct: Int64) {
        let path = directory + "/file-\(UUID().uuidString)"
        let descriptor = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        #expect(descriptor >= 0)
        defer { close(descriptor); unlink(path) }
        var expected: [UInt8] = []
        let writer = BackgroundWriter(descriptor: descriptor, hasher: nil, offset: offset)
        for (index, size) in sizes.enumerated() {
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index &* 7) }
            expected += bytes
            let buffer = try writer.takeBuffer()
            bytes.withUnsafeBytes { _ = buffer.append($0) }
            try writer.submit(buffer)
        }
        try writer.drainWrites()
        var stored = [UInt8](repeating: 0, count: expected.count)
        let count = stored.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, off_t(offset)) }
        #expect(count == expected.count)
        return (stored, expected, writer.directlyWritten)
    }

    /// Whether this file system takes O_DIRECT at all (tmpfs before Linux 6.6 doesn't).
    func takesDirectWrites(_ directory: String) -> Bool {
        let path = directory + "/probe-\(UUID().uuidString)"
        let descriptor = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        defer { close(descriptor); unlink(path) }
        let direct = minihost_reopen_for_direct_writes(descriptor)
        if direct >= 0 { close(direct) }
        return direct >= 0
    }

    @Test func alignedMegabytesGoDirectAndEverythingElseThroughThePageCache() throws {
        let fixture = try TemporaryStore()
        let directory = fixture.store.directory.temporaryPath
        let megabyte = UploadBuffer.capacity
        let direct = takesDirectWrites(directory)
        // Whole megabytes then a tail: all but the tail direct.
        let aligned = try write(sizes: [megabyte, megabyte, 1000], offset: 0, in: directory)
        #expect(aligned.bytes == aligned.expected)
        #expect(aligned.direct == (direct ? Int64(2 * megabyte) : 0))
        // A slot at an 8 MiB boundary, as tus PATCHes of 8 MiB land.
        let slot = try write(sizes: [megabyte, megabyte], offset: 8 << 20, in: directory)
        #expect(slot.bytes == slot.expected)
        #expect(slot.direct == (direct ? Int64(2 * megabyte) : 0))
        // An unaligned start: nothing direct, every byte in place.
        let unaligned = try write(sizes: [megabyte, megabyte, 77], offset: 1000, in: directory)
        #expect(unaligned.bytes == unaligned.expected && unaligned.direct == 0)
        // A short buffer mid-way makes the rest unaligned: direct until then.
        let broken = try write(sizes: [megabyte, Self.block + 5, megabyte], offset: 0, in: directory)
        #expect(broken.bytes == broken.expected)
        #expect(broken.direct == (direct ? Int64(megabyte) : 0))
    }

    @Test func directReadsGiveTheBytesOfAnyRangeUpToTheFilesEnd() throws {
        let fixture = try TemporaryStore()
        let path = fixture.store.directory.temporaryPath + "/read-\(UUID().uuidString)"
        let size = 3 * UploadBuffer.capacity + 1234
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ $0 >> 9) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        defer { unlink(path) }
        let descriptor = minihost_open_for_direct_reads(path)
        guard descriptor >= 0 else { return }  // a file system without O_DIRECT: nothing reads this way
        defer { close(descriptor) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: SessionFile.ioSize, alignment: Self.block)
        defer { buffer.deallocate() }
        let megabyte = UploadBuffer.capacity
        let ranges = [(0, size), (1, 10), (Self.block - 1, 2), (megabyte - 5, megabyte + 10), (size - 1, 1),
                      (size - 5000, 5000), (2 * megabyte, megabyte), (777, 2 * megabyte + 3)]
        for (offset, count) in ranges {
            var read: [UInt8] = []
            try SessionFile.readRangeDirect(descriptor, offset: Int64(offset), count: Int64(count), buffer: buffer) {
                read += $0
            }
            #expect(read == Array(bytes[offset..<offset + count]), "\(offset) +\(count)")
        }
        #expect(throws: StorageError.self) {
            try SessionFile.readRangeDirect(descriptor, offset: Int64(size - 10), count: 20, buffer: buffer) { _ in }
        }
    }

    /// Writing and hashing run on two helpers: the file is complete when
    /// `drainWrites` returns, and the hash, once finished, is the SHA-256 of
    /// exactly those bytes in order.
    @Test func writesAndTheHashRunSideBySideAndAgree() throws {
        let fixture = try TemporaryStore()
        let path = fixture.store.directory.temporaryPath + "/hashed-\(UUID().uuidString)"
        let descriptor = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        #expect(descriptor >= 0)
        defer { close(descriptor); unlink(path) }
        let hasher = try SHA256Hasher()
        let writer = BackgroundWriter(descriptor: descriptor, hasher: hasher)
        var expected: [UInt8] = []
        var memory = Set<UnsafeRawPointer?>()
        let megabyte = UploadBuffer.capacity
        for (index, size) in [megabyte, megabyte, megabyte, megabyte, megabyte, 4321].enumerated() {
            let buffer = try writer.takeBuffer()
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 17 &+ index) }
            bytes.withUnsafeBytes { _ = buffer.append($0) }
            memory.insert(buffer.bytes.baseAddress)
            expected += bytes
            try writer.submit(buffer)
        }
        try writer.drainWrites()
        var stored = [UInt8](repeating: 0, count: expected.count + 1)
        let count = stored.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        #expect(count == expected.count)
        #expect(Array(stored[0..<expected.count]) == expected)
        try writer.finishHashing()
        #expect(Hex.encode(try hasher.finalize()) == (try SHA256Hasher.hexDigest(of: expected)))
        // The two buffers went round and were refilled in place.
        #expect(memory.count == 2)
    }

    /// A cancelled writer stops both helpers, whatever is still queued.
    @Test func cancellingStopsBothHelpers() throws {
        let fixture = try TemporaryStore()
        let path = fixture.store.directory.temporaryPath + "/cancelled-\(UUID().uuidString)"
        let descriptor = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        defer { close(descriptor); unlink(path) }
        let writer = BackgroundWriter(descriptor: descriptor, hasher: try SHA256Hasher())
        for _ in 0..<2 {
            let buffer = try writer.takeBuffer()
            [UInt8](repeating: 7, count: UploadBuffer.capacity).withUnsafeBytes { _ = buffer.append($0) }
            try writer.submit(buffer)
        }
        writer.cancel()  // returns only once both helpers have ended
        #expect(throws: Never.self) { try writer.finishHashing() }
    }
}
