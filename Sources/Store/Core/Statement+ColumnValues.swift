import GRDB
import GRDBSQLite

/// One row's columns, read by index straight from SQLite.
///
/// GRDB's `Row` builds a dictionary of lowercased column names for every row
/// it reads. On the upload read behind every download that dictionary, for
/// nineteen columns, cost more than SQLite's own work, so the hottest reads
/// name their columns in a fixed order and decode them by position.
struct ColumnValues {
    let statement: SQLiteStatement

    /// Made only by ``Statement/fetchFirst(arguments:_:)`` and its kin, on a
    /// statement standing on a row.
    fileprivate init(statement: SQLiteStatement) {
        self.statement = statement
    }

    /// The value at `index`, or nil for NULL (or a value of another type).
    func optional<Value: StatementColumnConvertible>(_ index: CInt, as _: Value.Type = Value.self) -> Value? {
        sqlite3_column_type(statement, index) == SQLITE_NULL ? nil : Value(sqliteStatement: statement, index: index)
    }

    /// The value at `index`; NULL or a value of another type is an error.
    func required<Value: StatementColumnConvertible>(_ index: CInt, as _: Value.Type = Value.self) throws -> Value {
        guard let value: Value = optional(index) else { throw noValue(at: index, as: Value.self) }
        return value
    }

    /// The error for a required column that holds no `type`.
    func noValue(at index: CInt, as type: Any.Type) -> StorageError {
        let name = sqlite3_column_name(statement, index).map { String(cString: $0) } ?? "#\(index)"
        return StorageError(.invalid, "column \(name) holds no \(type)")
    }
}

extension Statement {
    /// The first row's columns, decoded by `decode`, or nil when there is none.
    /// The statement is reset before returning, so no read snapshot stays open.
    func fetchFirst<T>(arguments: StatementArguments, _ decode: (ColumnValues) throws -> T) throws -> T? {
        try setArguments(arguments)
        defer { sqlite3_reset(sqliteStatement) }
        switch sqlite3_step(sqliteStatement) {
        case SQLITE_ROW:
            return try decode(ColumnValues(statement: sqliteStatement))
        case SQLITE_DONE:
            return nil
        case let code:
            let message = sqlite3_db_handle(sqliteStatement).flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) }
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: sql)
        }
    }

    /// Every row's columns, decoded by `decode` (see ``fetchFirst(arguments:_:)``).
    func fetchEach<T>(arguments: StatementArguments, _ decode: (ColumnValues) throws -> T) throws -> [T] {
        try setArguments(arguments)
        defer { sqlite3_reset(sqliteStatement) }
        var values: [T] = []
        while true {
            switch sqlite3_step(sqliteStatement) {
            case SQLITE_ROW:
                values.append(try decode(ColumnValues(statement: sqliteStatement)))
            case SQLITE_DONE:
                return values
            case let code:
                let message = sqlite3_db_handle(sqliteStatement).flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) }
                throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: sql)
            }
        }
    }
}
