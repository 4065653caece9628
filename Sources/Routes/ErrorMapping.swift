import GRDB
import HTTPCore
import Logging
import Store

/// Turns whatever a handler threw into a status and a message safe to show.
/// Anything unexpected is logged in full and answered as a bare 500.
enum ErrorMapping {
    /// `logger` nil: only classify (no log lines).
    static func describe(_ error: Error, logger: Logger?, request: Request) -> (HTTPStatus, String, HTTPHeaders) {
        switch error {
        case let error as EchoedError:
            var (status, message, headers) = describe(error.underlying, logger: logger, request: request)
            headers.set("X-Minihost-Audit", error.echo)
            return (status, message, headers)
        case let error as HTTPError:
            return (error.status, error.publicMessage, error.headers)
        case let error as StorageError where error.code == .diskFull:
            logger?.error("storage full", metadata: ["path": "\(request.path)", "error": "\(error)"])
            return (.insufficientStorage, "Insufficient storage", HTTPHeaders())
        case let error as StorageError where error.code == .notFound:
            return (.notFound, "Upload not found", HTTPHeaders())
        case let error as StorageError where error.code == .outOfScope:
            return (.forbidden, "Folder is outside this password's scope", HTTPHeaders())
        case let error as StorageError where error.code == .invalid:
            return (.badRequest, error.detail, HTTPHeaders())
        case let error as RequestBodyError where error.code == .tooLarge:
            return (.payloadTooLarge, "Request body too large", HTTPHeaders())
        case let error as RequestBodyError:
            logger?.info("request body incomplete", metadata: ["path": "\(request.path)", "error": "\(error)"])
            return (.badRequest, "Request body incomplete", HTTPHeaders())
        case let error as DatabaseError where error.resultCode == .SQLITE_FULL:
            logger?.error("database full", metadata: ["path": "\(request.path)"])
            return (.insufficientStorage, "Insufficient storage", HTTPHeaders())
        case let error as DatabaseError where error.resultCode == .SQLITE_BUSY:
            logger?.error("database busy", metadata: ["path": "\(request.path)"])
            return (.serviceUnavailable, "Server busy, retry", HTTPHeaders([("Retry-After", "1")]))
        default:
            logger?.error("unhandled error", metadata: ["path": "\(request.path)", "error": "\(error)"])
            return (.internalServerError, "Internal server error", HTTPHeaders())
        }
    }

    /// The status `describe` would answer with, without logging.
    static func status(of error: Error) -> Int {
        describe(error, logger: nil, request: Request(method: "GET", path: "")).0.code
    }
}
