import Foundation
import MinihostTesting
import Testing
@testable import Store

@Suite struct SessionFileTests {
    static let size = (3 << 20) + 123
    static let ranges: [ClosedRange<Int64>] = [0...Int64(size - 1), 4095...(4095 + (1 << 20) + 6), 3_145_828...3_145_850, 1...1]

    @Test(arguments: ranges)
    func readFileGivesExactlyTheRangeAsked(range: ClosedRange<Int64>) throws {
        let offset = range.lowerBound, count = range.upperBound - range.lowerBound + 1
        let fixture = try TemporaryStore()
        let bytes = [UInt8](try #require(FileHandle(forReadingAtPath: "/dev/urandom")).readData(ofLength: Self.size))
        let path = fixture.root + "/range.bin"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        var read: [UInt8] = []
        try SessionFile.readFile(path, offset: offset, count: count) { read.append(contentsOf: $0) }
        #expect(read == Array(bytes[Int(offset)..<Int(offset + count)]))
    }

    @Test func readFilePastTheEndIsAnError() throws {
        let fixture = try TemporaryStore()
        let path = fixture.root + "/short.bin"
        try Data(repeating: 7, count: 5000).write(to: URL(fileURLWithPath: path))
        #expect(throws: StorageError.self) { try SessionFile.readFile(path, count: 5001) { _ in } }
        #expect(throws: StorageError.self) { try SessionFile.readFile(fixture.root + "/missing.bin", count: 1) { _ in } }
    }
}
