import ArgumentParser
import Foundation
import Logging
import Store

@main
struct Minihost: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "minihost",
        abstract: "A self-hosted file hosting server: FastCGI workers behind nginx.",
        subcommands: [Up.self, Serve.self, ClientCommand.self, AdminCommand.self, UserCommand.self, GC.self, Check.self,
                      NginxConfig.self, RoutesCommand.self, ChildOf.self]
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
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "minihost")
    }
}

/// A failure to report on standard error, exiting 1, without a stack of
/// ArgumentParser usage text.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
