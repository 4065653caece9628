import Testing

@testable import Store

@Suite struct UploadBuffersTests {
    @Test func anArrayGivenBackIsTheNextOneTakenEmptied() {
        let pool = UploadBuffers(limit: 2)
        var array = pool.takeArray()
        #expect(array.isEmpty && array.capacity >= UploadBuffers.size)
        array.append(contentsOf: [1, 2, 3])
        let storage = array.withUnsafeBufferPointer { $0.baseAddress }
        pool.giveBack(array)
        array = []
        let again = pool.takeArray()
        #expect(again.isEmpty)
        #expect(again.withUnsafeBufferPointer { $0.baseAddress } == storage)
    }

    @Test func alignedBuffersAreReusedAndAligned() {
        let pool = UploadBuffers(limit: 2)
        let buffer = pool.takeAligned()
        #expect(buffer.count == UploadBuffers.size)
        #expect(Int(bitPattern: buffer.baseAddress) % UploadBuffers.alignment == 0)
        pool.giveBack(aligned: buffer)
        #expect(pool.takeAligned().baseAddress == buffer.baseAddress)
    }

    @Test func keepsAtMostItsLimitAndReleaseFreesAll() {
        let pool = UploadBuffers(limit: 2)
        let arrays = (0..<3).map { _ in pool.takeArray() }
        let aligned = (0..<3).map { _ in pool.takeAligned() }
        for array in arrays { pool.giveBack(array) }
        for buffer in aligned { pool.giveBack(aligned: buffer) }
        #expect(pool.waiting == 4)
        // Too small to be an upload buffer: not kept.
        pool.giveBack([UInt8](repeating: 0, count: 10))
        #expect(pool.waiting == 4)
        #expect(pool.release() == 4)
        #expect(pool.waiting == 0)
    }
}
