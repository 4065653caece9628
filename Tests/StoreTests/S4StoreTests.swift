import Foundation
import MinihostTesting
import Testing
@testable import Store

@Suite struct S4StoreTests {
    func put(_ fixture: TemporaryStore, _ bucket: String, _ key: String, _ bytes: String = "x") throws -> S4Object {
        let writer = try fixture.store.blobs.makeWriter()
        try Array(bytes.utf8).withUnsafeBytes { try writer.write($0) }
        return try fixture.store.s4.put(try writer.finish(), bucket: bucket, key: key, contentType: "text/plain", metadata: nil)
    }

    /// What a listing must give: S3's delimiter rules over the sorted keys, computed the slow way.
    func reference(_ keys: [String], prefix: String) -> [String] {
        var entries: [String] = []
        for key in keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) where key.utf8.starts(with: prefix.utf8) {
            let rest = String(decoding: key.utf8.dropFirst(prefix.utf8.count), as: UTF8.self)
            let entry = rest.firstIndex(of: "/").map { prefix + rest[...$0] } ?? key
            if entries.last != entry { entries.append(entry) }
        }
        return entries
    }

    func walk(_ store: MinihostStore, _ bucket: S4Bucket, prefix: String, pageSize: Int) throws -> [String] {
        var entries: [String] = []
        var cursor: S4ListingCursor?
        for _ in 0..<10_000 {
            let page = try store.s4.list(bucket, prefix: prefix, delimiter: true, after: cursor, maxKeys: pageSize)
            // Objects and prefixes interleave in key order within a page.
            let merged = (page.objects.map(\.key) + page.prefixes).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            #expect(merged.count <= pageSize)
            entries += merged
            guard let token = page.nextToken else { return entries }
            cursor = S4ListingCursor(encoded: token)
        }
        Issue.record("listing never ended")
        return entries
    }

    @Test func pagesMatchTheDelimiterRulesForEveryPrefixAndPageSize() throws {
        let fixture = try TemporaryStore()
        try fixture.store.s4.createBucket("b")
        var generator = SystemRandomNumberGenerator()
        let alphabet = ["a", "b", "/", "ü", "0", "."]
        var keys = Set<String>()
        while keys.count < 150 {
            let length = Int.random(in: 1...6, using: &generator)
            keys.insert((0..<length).map { _ in alphabet.randomElement(using: &generator)! }.joined())
        }
        for key in keys { _ = try put(fixture, "b", key) }
        let bucket = try #require(try fixture.store.s4.bucket("b"))
        for prefix in ["", "a", "a/", "/", "ü", "b/a", "zzz"] {
            let expected = reference(Array(keys), prefix: prefix)
            for pageSize in [1, 2, 7, 500] {
                #expect(try walk(fixture.store, bucket, prefix: prefix, pageSize: pageSize) == expected,
                        "prefix \(prefix) page \(pageSize)")
            }
        }
    }

    @Test func replacingAKeyLeavesOneReadyUploadAndOneRow() throws {
        let fixture = try TemporaryStore()
        try fixture.store.s4.createBucket("b")
        let first = try put(fixture, "b", "k", "first")
        let second = try put(fixture, "b", "k", "second version")
        let bucket = try #require(try fixture.store.s4.bucket("b"))
        let found = try #require(try fixture.store.s4.object(bucket: bucket, key: "k"))
        #expect(found.object.uploadId == second.uploadId && found.object.size == 14)
        #expect(try fixture.store.upload(id: first.uploadId)?.state == .purged)
        #expect(try fixture.store.s4.deleteBucket("b") == .notEmpty)
        #expect(try fixture.store.s4.delete(bucket: "b", prefix: "k") == 1)
        #expect(try fixture.store.s4.deleteBucket("b") == .deleted)
        #expect(throws: StorageError.self) { try put(fixture, "b", "k") }
    }

    @Test func deleteTakesAPrefixInBatches() throws {
        let fixture = try TemporaryStore()
        try fixture.store.s4.createBucket("b")
        for index in 0..<1_203 { _ = try put(fixture, "b", "dir/\(index)", "\(index)") }
        _ = try put(fixture, "b", "dir0")
        _ = try put(fixture, "b", "dis")
        #expect(try fixture.store.s4.delete(bucket: "b", prefix: "dir/") == 1_203)
        let bucket = try #require(try fixture.store.s4.bucket("b"))
        let left = try fixture.store.s4.list(bucket, prefix: "", delimiter: true, after: nil, maxKeys: 10)
        #expect(left.objects.map(\.key) == ["dir0", "dis"])
    }

    @Test func apiClientsUploadsAreAReadOnlyBucketKeyedByIdAndName() throws {
        let fixture = try TemporaryStore()
        _ = try fixture.store.clients.create(key: "app", scopes: ["upload"])
        let uploads = try (0..<5).map { try fixture.upload(Array("\($0)".utf8), owner: .apiClient("app"), name: "f\($0).txt") }
        let bucket = try #require(try fixture.store.s4.bucket("app:app"))
        #expect(bucket.isReadOnly)
        let sorted = uploads.sorted { $0.id < $1.id }
        let all = try walk(fixture.store, bucket, prefix: "", pageSize: 2)
        #expect(all == sorted.map { $0.id + "/" })
        let inner = try fixture.store.s4.list(bucket, prefix: sorted[2].id + "/", delimiter: true, after: nil, maxKeys: 10)
        #expect(inner.objects.map(\.key) == [sorted[2].id + "/" + sorted[2].fileName])
        let found = try fixture.store.s4.search(bucket, prefix: "", containing: "F3.TXT", after: nil, maxKeys: 10)
        #expect(found.objects.map(\.uploadId) == [uploads[3].id])
        #expect(try fixture.store.s4.object(bucket: bucket, key: uploads[1].id + "/wrong.txt") == nil)
        #expect(try fixture.store.s4.bucket("app:nobody") == nil)
    }

    @Test func containsSearchPagesAndIgnoresThePrefixItself() throws {
        let fixture = try TemporaryStore()
        try fixture.store.s4.createBucket("b")
        for key in ["logs/config-1", "logs/other", "logs/sub/CONFIG", "config/x", "logsconfig"] { _ = try put(fixture, "b", key) }
        let bucket = try #require(try fixture.store.s4.bucket("b"))
        let first = try fixture.store.s4.search(bucket, prefix: "logs/", containing: "config", after: nil, maxKeys: 1)
        #expect(first.objects.map(\.key) == ["logs/config-1"])
        let cursor = try #require(first.nextToken.flatMap(S4ListingCursor.init(encoded:)))
        let second = try fixture.store.s4.search(bucket, prefix: "logs/", containing: "config", after: cursor, maxKeys: 5)
        #expect(second.objects.map(\.key) == ["logs/sub/CONFIG"] && second.nextToken == nil)
        let none = try fixture.store.s4.search(bucket, prefix: "config", containing: "config", after: nil, maxKeys: 5)
        #expect(none.objects.isEmpty)
    }

    @Test func ticketsAreSingleUseAndExpire() throws {
        let fixture = try TemporaryStore()
        let tickets = fixture.store.streamTickets
        let ticket = try tickets.issue(username: "op", resource: "r", resourceType: "upload", lifetime: 60)
        #expect(try tickets.redeem(ticket)?.resource == "r")
        #expect(try tickets.redeem(ticket) == nil)
        let old = try tickets.issue(username: "op", resource: "r", resourceType: "upload", lifetime: 60,
                                    now: Date().addingTimeInterval(-120))
        #expect(try tickets.redeem(old) == nil)
        #expect(try tickets.redeem("not-a-ticket") == nil)
    }

    @Test func rateWindowsCountPerKeyAndReopen() throws {
        let fixture = try TemporaryStore()
        let windows = fixture.store.rateWindows
        let start = Date()
        for _ in 0..<3 { #expect(try windows.take("k", limit: 3, window: 60, now: start) == nil) }
        let until = try #require(try windows.take("k", limit: 3, window: 60, now: start.addingTimeInterval(1)))
        #expect(abs(until.timeIntervalSince(start) - 60) < 0.01)
        #expect(try windows.take("other", limit: 3, window: 60, now: start) == nil)
        #expect(try windows.take("k", limit: 3, window: 60, now: start.addingTimeInterval(61)) == nil)
    }

    @Test func settingsPersist() throws {
        let fixture = try TemporaryStore()
        #expect(try fixture.store.settings.value("x") == nil)
        try fixture.store.settings.set("x", to: "1")
        try fixture.store.settings.set("x", to: "2")
        #expect(try fixture.store.settings.value("x") == "2")
    }

    @Test func progressBoardRecordsAndReads() throws {
        let fixture = try TemporaryStore()
        let board = fixture.store.uploadProgress
        #expect(board.read("k") == nil)
        let progress = board.start("k", total: 10 << 20)
        progress.advance(by: 2 << 20)
        #expect(board.read("k")?.received == 2 << 20)
        progress.finish(.complete)
        let reading = try #require(board.read("k"))
        #expect(reading.state == .complete && reading.total == 10 << 20)
        #expect(board.sweep(olderThan: 3600) == 0)
    }
}
