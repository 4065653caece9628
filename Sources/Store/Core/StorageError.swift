import GRDB
import Glibc

/// A storage operation failed. Routes map the code to a status: `diskFull` is
/// 507, `notFound` 404, anything else 500 with no detail shown to the client.
public struct StorageError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        /// The disk (or quota) has no room: nothing was stored.
        public static let diskFull = Code(name: "diskFull")
        /// A file operation failed for another reason.
        public static let io = Code(name: "io")
        /// The thing asked for does not exist (or isn't the caller's).
        public static let notFound = Code(name: "notFound")
        /// Input the store refuses (a bad name, a duplicate key).
        public static let invalid = Code(name: "invalid")
        /// The owner's quota can't hold it (stored plus reserved bytes).
        public static let quotaExceeded = Code(name: "quotaExceeded")
        /// A scoped credential reached outside its folder subtree.
        public static let outOfScope = Code(name: "outOfScope")
        /// SQLite could not grow its files: nothing was recorded.
        public static let databaseFull = Code(name: "databaseFull")
        /// SQLite's lock stayed taken past the busy timeout; retry.
        public static let busy = Code(name: "busy")
        /// The name is taken (an account that already exists).
        public static let conflict = Code(name: "conflict")
    }

    public let code: Code
    public let detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    /// From the current `errno` after a failed file operation.
    static func fromErrno(_ operation: String, _ value: Int32 = errno) -> StorageError {
        let message = "\(operation): \(String(cString: strerror(value)))"
        switch value {
        case ENOSPC, EDQUOT: return StorageError(.diskFull, message)
        case ENOENT: return StorageError(.notFound, message)
        default: return StorageError(.io, message)
        }
    }

    public var description: String { "storage \(code): \(detail)" }
}

extension StorageError {
    /// A SQLite failure in the store's words, so callers never see GRDB.
    init(database error: DatabaseError) {
        switch error.resultCode {
        case .SQLITE_FULL: self.init(.databaseFull, "database full")
        case .SQLITE_BUSY, .SQLITE_LOCKED: self.init(.busy, "database busy")
        case .SQLITE_CONSTRAINT: self.init(.invalid, "constraint violated")
        default: self.init(.io, "database error \(error.resultCode.rawValue): \(error.message ?? "")")
        }
    }

    /// Runs `body`, turning GRDB's errors into ``StorageError``.
    static func translating<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as DatabaseError { throw StorageError(database: error) }
    }
}
