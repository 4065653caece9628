import ArgumentParser
import Foundation
import HTTPCore
import Logging
import Store

@main
struct Minihost: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "minihost",
        abstract: "A self-hosted file hosting server: FastCGI workers behind nginx.",
        subcommands: [Up.self, Serve.self, ClientCommand.self, AdminCommand.self, UserCommand.self, GC.self, Check.self,
                      NginxConfig.self, RoutesCommand.self, Status.self, Push.self, Pull.self, ChildOf.self]
    )
}

/// `--data DIR`, shared by every command that touches stored data.
struct DataOptions: ParsableArguments {
    @Option(name: .long, help: "The data folder (database, blobs, temporary files).")
    var data: String = "./var"

    /// The store in the data folder, created and migrated if needed.
    func openStore() throws -> MinihostStore {
        try MinihostStore(directory: DataDirectory(data))
    }
}

enum Logs {
    /// Logs to standard error at `MINIHOST_LOG_LEVEL` (default info).
    static func bootstrap() -> Logger {
        let level = ProcessInfo.processInfo.environment["MINIHOST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        // Every line written while a request is handled names it.
        let requestId = Logger.MetadataProvider {
            RequestId.current.map { ["request_id": "\($0)"] } ?? [:]
        }
        LoggingSystem.bootstrap({ label, provider in
            var handler = StreamLogHandler.standardError(label: label, metadataProvider: provider)
            handler.logLevel = level
            return handler
        }, metadataProvider: requestId)
        return Logger(label: "minihost")
    }
}

/// A failure to report on standard error, exiting 1, without a stack of
/// ArgumentParser usage text.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
