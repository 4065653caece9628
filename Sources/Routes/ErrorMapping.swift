import HTTPCore
import Logging
import Store

/// Turns whatever a handler threw into an answer safe to show. Anything
/// unexpected is logged in full and answered as a bare 500.
enum ErrorMapping {
    /// `logger` nil: only classify (no log lines).
    static func answer(for error: Error, logger: Logger?, request: Request) -> ErrorAnswer {
        switch error {
        case let error as EchoedError:
            var answer = answer(for: error.underlying, logger: logger, request: request)
            answer.headers.set("X-Minihost-Audit", error.echo)
            return answer
        case let error as HTTPError:
            return ErrorAnswer(status: error.status, code: error.code, message: error.publicMessage, details: error.details,
                               headers: error.headers)
        case let error as StorageError where error.code == .diskFull:
            logger?.error("storage full", metadata: ["path": "\(request.path)", "error": "\(error)"])
            return ErrorAnswer(status: .insufficientStorage, message: "Insufficient storage")
        case let error as StorageError where error.code == .databaseFull:
            logger?.error("database full", metadata: ["path": "\(request.path)"])
            return ErrorAnswer(status: .insufficientStorage, message: "Insufficient storage")
        case let error as StorageError where error.code == .busy:
            logger?.error("database busy", metadata: ["path": "\(request.path)"])
            return ErrorAnswer(status: .serviceUnavailable, message: "Server busy, retry", headers: HTTPHeaders([("Retry-After", "1")]))
        case let error as StorageError where error.code == .notFound:
            return ErrorAnswer(status: .notFound, message: "Upload not found")
        case let error as StorageError where error.code == .outOfScope:
            return ErrorAnswer(status: .forbidden, message: "Folder is outside this password's scope")
        case let error as StorageError where error.code == .invalid:
            return ErrorAnswer(status: .badRequest, message: error.detail)
        case let error as StorageError where error.code == .conflict:
            return ErrorAnswer(status: .conflict, message: error.detail)
        case let error as RequestBodyError where error.code == .tooLarge:
            return ErrorAnswer(status: .payloadTooLarge, message: "Request body too large")
        case let error as RequestBodyError:
            logger?.info("request body incomplete", metadata: ["path": "\(request.path)", "error": "\(error)"])
            return ErrorAnswer(status: .badRequest, message: "Request body incomplete")
        default:
            logger?.error("unhandled error", metadata: ["path": "\(request.path)", "error": "\(error)"])
            return ErrorAnswer(status: .internalServerError, message: "Internal server error")
        }
    }

    /// The status `answer(for:)` gives, without logging.
    static func status(of error: Error) -> Int {
        answer(for: error, logger: nil, request: Request(method: "GET", path: "")).status.code
    }
}

/// An error that carries the audit echo header with it; ``ErrorMapping``
/// answers for the underlying error and adds the header.
struct EchoedError: Error {
    let underlying: Error
    let echo: String
}
