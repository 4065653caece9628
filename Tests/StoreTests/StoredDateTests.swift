import Foundation
import GRDB
import Testing
@testable import Store

/// Dates read by arithmetic are the dates GRDB reads, to well under a
/// millisecond (GRDB's calendar arithmetic is off by picoseconds), and the
/// nearest Double to the stored millisecond.
@Suite struct StoredDateTests {
    private func grdb(_ text: String) -> Date? {
        Date.fromDatabaseValue(text.databaseValue)
    }

    private func parsed(_ text: String) -> Date? {
        Array(text.utf8).withUnsafeBufferPointer { StoredDate.parse($0) }
    }

    private func expectSame(_ text: String, milliseconds: Int64? = nil) {
        guard let fast = parsed(text), let slow = grdb(text) else {
            Issue.record("\(text) not parsed")
            return
        }
        #expect(abs(fast.timeIntervalSince(slow)) < 1e-9, "\(text)")
        #expect(String.fromDatabaseValue(fast.databaseValue) == String.fromDatabaseValue(slow.databaseValue), "\(text)")
        if let milliseconds {
            #expect(fast.timeIntervalSinceReferenceDate == Double(milliseconds) / 1000, "\(text)")
        }
    }

    @Test func everyDateGRDBWritesReadsBackTheSame() {
        var generator = SystemRandomNumberGenerator()
        // 1900 to 2200: before and after the reference date, across leap years and centuries.
        for _ in 0..<20_000 {
            let milliseconds = Int64.random(in: -3_155_760_000_000...6_311_390_400_000, using: &generator)
            let date = Date(timeIntervalSinceReferenceDate: Double(milliseconds) / 1000)
            expectSame(String.fromDatabaseValue(date.databaseValue)!, milliseconds: milliseconds)
        }
    }

    @Test func edgesOfTheCalendar() {
        for text in ["2000-02-29 23:59:59.999", "2001-01-01 00:00:00.000", "2000-12-31 23:59:59.999",
                     "1970-01-01 00:00:00.000", "1969-12-31 23:59:59.001", "2100-02-28 12:00:00.500",
                     "2024-02-29 00:00:00", "1600-03-01 00:00:00.000", "9999-12-31 23:59:59.999"] {
            expectSame(text)
        }
        expectSame("2000-12-31 23:59:59.999", milliseconds: -1)
        expectSame("2001-01-01 00:00:01.001", milliseconds: 1_001)
    }

    /// Another layout or an impossible date is left to GRDB, whatever it makes of it.
    @Test func anythingElseIsLeftToGRDB() {
        for text in ["2023-02-29 00:00:00.000", "2100-02-29 00:00:00.000", "2024-13-01 00:00:00.000",
                     "2024-04-31 00:00:00.000", "2024-01-01 24:00:00.000", "2024-01-01 00:60:00.000",
                     "2024-01-01 00:00:60.000", "2024-01-01T00:00:00.000", "2024-01-01 00:00:00.0000",
                     "2024-01-01 00:00:00.00", "2024-01-01 00:00", "2024-01-01", "2024-01-01 00:00:00+01:00",
                     "2024-01-01 00:00:0a.000", "-024-01-01 00:00:00.000", "2024-01-01 00:00:00,000", ""] {
            #expect(parsed(text) == nil, "\(text)")
        }
    }

    /// The row read behind downloads decodes its dates through the fast path
    /// and the fallback alike.
    @Test func anUploadRowDecodesTheSameEitherWay() throws {
        let queue = try DatabaseQueue()
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE t (a, b, c, d)")
            try db.execute(sql: "INSERT INTO t VALUES ('2024-05-06 07:08:09.123', '2024-05-06 07:08:09', 1700000000.25, NULL)")
        }
        let (fast, slow) = try queue.read { db -> ([Date?], [Date?]) in
            let statement = try db.makeStatement(sql: "SELECT a, b, c, d FROM t")
            let fast = try statement.fetchFirst(arguments: []) { c in
                [c.optional(0, as: Date.self), c.optional(1, as: Date.self), c.optional(2, as: Date.self),
                 c.optional(3, as: Date.self)]
            }
            let row = try #require(try Row.fetchOne(db, sql: "SELECT a, b, c, d FROM t"))
            return (try #require(fast), [row[0], row[1], row[2], row[3]] as [Date?])
        }
        #expect(fast == slow)
        #expect(fast[2] == Date(timeIntervalSince1970: 1_700_000_000.25) && fast[3] == nil)
    }
}
