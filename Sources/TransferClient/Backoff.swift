import Foundation

/// Retries with exponential backoff (0.25 s, doubling, at most 10 s between
/// tries) while `retryable` says an error is worth another try.
struct Backoff {
    let retries: Int

    func run<T>(retryable: (Error) -> String?, _ body: () throws -> T) throws -> T {
        var attempt = 0
        while true {
            do {
                return try body()
            } catch {
                guard let reason = retryable(error) else { throw error }
                attempt += 1
                guard attempt <= retries else { throw PushError("gave up after \(retries) retries: \(reason)") }
                Thread.sleep(forTimeInterval: min(10, 0.25 * pow(2, Double(attempt - 1))))
            }
        }
    }

    /// A dropped connection, or a failure the pusher marked as worth retrying.
    static func transient(_ error: Error) -> String? {
        if let failure = error as? RetryableFailure { return failure.reason }
        if let failure = error as? TransferError, failure.code == .network { return failure.description }
        return nil
    }
}
