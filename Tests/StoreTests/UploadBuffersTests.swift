import Testing

@testable import Store

@Suite struct UploadBuffersTests {
    @Test func aBufferGivenBackIsTheNextOneTakenEmptied() {
        let pool = UploadBuffers(limit: 2)
        let buffer = pool.take()
        #expect(buffer.isEmpty && buffer.memory.count == UploadBuffer.capacity)
        ([1, 2, 3] as [UInt8]).withUnsafeBytes { _ = buffer.append($0) }
        #expect(buffer.count == 3)
        pool.giveBack(buffer)
        let again = pool.take()
        #expect(again === buffer)
        #expect(again.isEmpty)
    }

    @Test func buffersAreAlignedForDirectWrites() {
        let buffers = (0..<3).map { _ in UploadBuffer() }
        for buffer in buffers {
            #expect(Int(bitPattern: buffer.memory.baseAddress) % UploadBuffer.alignment == 0)
        }
    }

    @Test func appendTakesWhatFitsAndSaysHowMuch() {
        let buffer = UploadBuffer()
        let almost = [UInt8](repeating: 7, count: UploadBuffer.capacity - 2)
        #expect(almost.withUnsafeBytes { buffer.append($0) } == almost.count)
        #expect(!buffer.isFull)
        #expect(([1, 2, 3, 4] as [UInt8]).withUnsafeBytes { buffer.append($0) } == 2)
        #expect(buffer.isFull)
        #expect(([5] as [UInt8]).withUnsafeBytes { buffer.append($0) } == 0)
        #expect(Array(buffer.bytes.suffix(3)) == [7, 1, 2])
        buffer.removeAll()
        #expect(buffer.isEmpty && buffer.bytes.isEmpty)
    }

    @Test func keepsAtMostItsLimitAndReleaseFreesAll() {
        let pool = UploadBuffers(limit: 2)
        let buffers = (0..<3).map { _ in pool.take() }
        for buffer in buffers { pool.giveBack(buffer) }
        #expect(pool.waiting == 2)
        #expect(pool.release() == 2)
        #expect(pool.waiting == 0)
    }
}
