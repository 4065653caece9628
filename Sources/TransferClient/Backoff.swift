import Foundation

/// Retries with exponential backoff (0.25 s, doubling, at most 10 s between
/// tries) while `retryable` says an error is worth another try, telling
/// `notify` about each wait: a person shouldn't sit through a minute of
/// retries in silence.
struct Backoff {
    let retries: Int
    var notify: (@Sendable (String) -> Void)?

    func run<T>(retryable: (Error) -> String?, _ body: () throws -> T) throws -> T {
        var attempt = 0
        while true {
            do {
                return try body()
            } catch {
                guard let reason = retryable(error) else { throw error }
                attempt += 1
                guard attempt <= retries else {
                    throw PushError(retries == 0 ? reason : "gave up after \(retries) \(retries == 1 ? "retry" : "retries"): \(reason)")
                }
                let delay = min(10, 0.25 * pow(2, Double(attempt - 1)))
                notify?("\(reason); trying again in \(String(format: "%.2g", delay)) s (\(attempt) of \(retries))")
                Thread.sleep(forTimeInterval: delay)
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
