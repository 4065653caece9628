import ArgumentParser
import Foundation
import HTTPCore
import Routes
import TransferClient

/// Where the CLI finds the server and the credential: never a flag, which
/// would land in shell history and `ps`.
struct ClientOptions: ParsableArguments {
    @Option(help: "The server's origin, e.g. https://files.example.com (default: MINIHOST_SERVER).")
    var server: String?

    var resolvedServer: String {
        get throws {
            guard let given = server ?? ProcessInfo.processInfo.environment["MINIHOST_SERVER"], !given.isEmpty else {
                throw ValidationError("give --server URL or set MINIHOST_SERVER")
            }
            var server = given
            while server.hasSuffix("/") { server.removeLast() }
            // Anything else would fail only after a minute of retries.
            guard let url = URL(string: server), ["http", "https"].contains(url.scheme?.lowercased() ?? ""),
                  url.host?.isEmpty == false else {
                throw ValidationError("the server must be an http:// or https:// URL, not '\(given)'")
            }
            return server
        }
    }

    @Option(help: "Times to try again after a dropped connection or a busy server (waits from 0.25 s, doubling, to 10 s).")
    var retries = 10

    func validate() throws {
        guard (0...100).contains(retries) else { throw ValidationError("--retries takes 0 to 100") }
        _ = try resolvedServer
    }

    /// Says on standard error, unless quiet, when the credential and the
    /// bytes would cross a network unencrypted: plain http to anything but
    /// this machine. Not refused: a LAN server without TLS is the operator's choice.
    func warnIfUnencrypted(quiet: Bool) throws {
        guard !quiet, let url = URL(string: try resolvedServer), url.scheme?.lowercased() == "http" else { return }
        let host = (url.host ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        guard host.lowercased() != "localhost", !LoopbackAddress.contains(host) else { return }
        TransferProgress.Display.standardError.line(
            "warning: \(host) is plain http: the credential and the file cross the network unencrypted (use https://)")
    }

    /// Where a retry and its wait are told: standard error, unless quiet.
    func retryNotice(quiet: Bool) -> (@Sendable (String) -> Void)? {
        guard !quiet else { return nil }
        return { @Sendable message in TransferProgress.Display.standardError.line(message) }
    }

    /// `MINIHOST_CREDENTIAL`, else the first line of `~/.config/minihost/credential`,
    /// which only its owner may read (as ssh insists for a private key).
    var credential: String {
        get throws {
            let environment = ProcessInfo.processInfo.environment
            if let credential = environment["MINIHOST_CREDENTIAL"], !credential.isEmpty { return credential }
            let file = Self.configDirectory + "/credential"
            if let text = try? String(contentsOfFile: file, encoding: .utf8),
               let line = text.split(whereSeparator: \.isNewline).first, !line.isEmpty {
                var status = stat()
                guard stat(file, &status) == 0, status.st_mode & 0o077 == 0 else {
                    throw ValidationError("others than its owner can read or change \(file); run: chmod 600 \(file)")
                }
                return String(line).trimmingCharacters(in: .whitespaces)
            }
            throw ValidationError("set MINIHOST_CREDENTIAL to an API client credential (key.secret), or put it in \(file)")
        }
    }

    static var configDirectory: String {
        let environment = ProcessInfo.processInfo.environment
        return (environment["XDG_CONFIG_HOME"] ?? (NSHomeDirectory() + "/.config")) + "/minihost"
    }

    static var stateDirectory: String {
        let environment = ProcessInfo.processInfo.environment
        return (environment["XDG_STATE_HOME"] ?? (NSHomeDirectory() + "/.local/state")) + "/minihost/push"
    }
}

/// `minihost push FILE…`: tus uploads with progress, retries and resume.
struct Push: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Upload files over tus, resuming after a dropped connection or an interrupted run.",
        discussion: """
            The credential comes from MINIHOST_CREDENTIAL or ~/.config/minihost/credential (an API client with \
            the upload and download scopes). Files of --parallel-mb or more go as --parallel partial uploads \
            joined on the server. Run the same command again after an interruption and it resumes the same upload.
            """)

    @OptionGroup var client: ClientOptions
    @Argument(help: "Files to upload.") var files: [String]
    @Flag(help: "One JSON object per file on standard output.") var json = false
    @Option(help: "Partial uploads in parallel for large files.") var parallel = 4
    /// The server joins parts by copying them, which on one local disk costs
    /// more than parallel lanes gain (500 MB: 2.1 x a single upload, against
    /// 1.25 x in one part); parts pay off on links slower than the disk.
    @Option(help: "Files at least this large (MB) go in parallel parts.") var parallelMb = 1024
    @Option(help: "Megabytes per PATCH (each is acknowledged once on the server's disk).") var patchMb = 64
    @Flag(help: "No progress, retry notices or warnings on standard error.") var quiet = false

    func validate() throws {
        guard (1...32).contains(parallel) else { throw ValidationError("--parallel takes 1 to 32") }
        guard (1...4096).contains(patchMb), parallelMb >= 1 else { throw ValidationError("--patch-mb takes 1 to 4096") }
    }

    func run() throws {
        let options = PushOptions(server: try client.resolvedServer, credential: try client.credential,
                                  stateDirectory: ClientOptions.stateDirectory, parallel: parallel,
                                  parallelThreshold: Int64(parallelMb) << 20, patchSize: Int64(patchMb) << 20,
                                  retries: client.retries, onRetry: client.retryNotice(quiet: quiet))
        try client.warnIfUnencrypted(quiet: quiet)
        let pusher = TusPusher(options: options)
        // As rsync does: a file that can't be read or that the server refuses
        // is told and skipped; a server out of reach stops the run.
        var skipped = 0
        for file in files {
            let name = (file as NSString).lastPathComponent
            let result: PushResult
            do {
                result = try pusher.push(path: file, contentType: MediaTypeGuess.forFileName(name)) { total in
                    quiet ? nil : TransferProgress(label: name, total: total)
                }
            } catch let error as PushError where error.code != .transfer {
                TransferProgress.Display.standardError.line("Error: \(error)")
                skipped += 1
                continue
            }
            if json {
                let object: [String: Any] = ["id": result.id, "name": result.name, "size": result.size, "sha256": result.sha256,
                                             "download": result.downloadURL, "resumed": result.resumed]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
                print(String(decoding: data, as: UTF8.self))
            } else {
                // For a person: a name that steers terminals is shown with `?`s (--json has it exact).
                print("\(TerminalText.safe(result.name)): \(result.id) (\(result.size) bytes, sha256 \(result.sha256) verified)")
                print("  download: \(result.downloadURL)")
            }
        }
        if skipped > 0 { throw PushError("\(skipped) of \(files.count) files were not pushed") }
    }
}

/// `minihost pull ID`: a download that resumes and checks SHA-256.
struct Pull: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download an upload, resuming with Range after a cut, and check its SHA-256.")

    @OptionGroup var client: ClientOptions
    @Argument(help: "The upload's id.") var id: String
    @Option(name: .shortAndLong, help: "Where to write it (default: its file name).") var output: String?
    @Flag(help: "No progress, retry notices or warnings on standard error.") var quiet = false

    func run() throws {
        try client.warnIfUnencrypted(quiet: quiet)
        let puller = Puller(server: try client.resolvedServer, credential: try client.credential, retries: client.retries,
                            onRetry: client.retryNotice(quiet: quiet))
        let result = try puller.pull(id: id, output: output) { total, path in
            quiet ? nil : TransferProgress(label: (path as NSString).lastPathComponent, total: total)
        }
        print("\(TerminalText.safe(result.path)): \(result.size) bytes, sha256 \(result.sha256) verified\(result.resumed ? " (resumed)" : "")")
    }
}
