import Foundation
import GRDB
import GRDBSQLite

/// Dates as GRDB stores them, `yyyy-MM-dd HH:mm:ss.SSS` in UTC, read without
/// Foundation's calendar.
///
/// GRDB parses the text into `DateComponents` and asks a Gregorian calendar
/// for the date: on the upload read behind every download, the row's dates
/// were a quarter of the read. This reads that one layout (and the same
/// without milliseconds, as SQLite's `datetime()` writes it) by arithmetic,
/// as the Double nearest the stored millisecond; GRDB's calendar comes within
/// picoseconds of it. Anything else, a number, another layout or an
/// impossible date, goes to GRDB as before.
extension ColumnValues {
    /// The date at `index`, or nil for NULL (or a value that is no date).
    func optional(_ index: CInt, as _: Date.Type = Date.self) -> Date? {
        switch sqlite3_column_type(statement, index) {
        case SQLITE_NULL:
            return nil
        case SQLITE_TEXT:
            if let text = sqlite3_column_text(statement, index),
               let date = StoredDate.parse(UnsafeBufferPointer(start: text, count: Int(sqlite3_column_bytes(statement, index)))) {
                return date
            }
            return Date(sqliteStatement: statement, index: index)
        default:
            return Date(sqliteStatement: statement, index: index)
        }
    }

    /// The date at `index`; NULL or a value that is no date is an error.
    func required(_ index: CInt, as _: Date.Type = Date.self) throws -> Date {
        guard let date: Date = optional(index) else { throw noValue(at: index, as: Date.self) }
        return date
    }
}

/// The parsing behind ``ColumnValues``' dates, on bytes.
enum StoredDate {
    /// `yyyy-MM-dd HH:mm:ss.SSS` or `yyyy-MM-dd HH:mm:ss` (UTC) as a date, or
    /// nil for any other text or a date no calendar has.
    static func parse(_ text: UnsafeBufferPointer<UInt8>) -> Date? {
        guard text.count == 23 || text.count == 19 else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for index in range {
                let digit = Int(text[index]) - 48
                guard (0...9).contains(digit) else { return nil }
                value = value * 10 + digit
            }
            return value
        }
        guard text[4] == UInt8(ascii: "-"), text[7] == UInt8(ascii: "-"), text[10] == UInt8(ascii: " "),
              text[13] == UInt8(ascii: ":"), text[16] == UInt8(ascii: ":"),
              text.count == 19 || text[19] == UInt8(ascii: "."),
              let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
              let milliseconds = text.count == 23 ? number(20..<23) : 0,
              (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
              hour < 24, minute < 60, second < 60
        else { return nil }
        let seconds = (daysSince1970(year: year, month: month, day: day) - daysFrom1970To2001) * 86_400
            + hour * 3_600 + minute * 60 + second
        // One rounding, of an exact count of milliseconds: the nearest Double.
        return Date(timeIntervalSinceReferenceDate: Double(seconds * 1_000 + milliseconds) / 1_000)
    }

    private static let daysFrom1970To2001 = 11_323

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
    /// `days_from_civil`).
    private static func daysSince1970(year: Int, month: Int, day: Int) -> Int {
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * ((month + 9) % 12) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
