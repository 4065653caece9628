import ArgumentParser
import Foundation
import Store

struct ClientCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client", abstract: "Manage API clients (Bearer <client_key>.<secret>).",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an API client; prints its credential NAME.SECRET as the last line.")
        @Argument(help: "The client key (A-Z a-z 0-9 _ -).") var name: String
        @Option(help: "Comma-separated scopes: upload, download, publish.") var scopes: String = "upload,download"
        @OptionGroup var dataOptions: DataOptions

        func run() throws {
            let store = try dataOptions.openStore()
            let scopeList = scopes.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            let secret: String
            do { secret = try store.clients.create(key: name, scopes: scopeList) } catch let error as StorageError {
                throw CommandFailure(error.detail)
            }
            print("Created client \(name) with scopes \(scopeList.joined(separator: ",")).")
            print("Send it as: Authorization: Bearer <credential>. It is shown only once:")
            print("\(name).\(secret)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List API clients.")
        @OptionGroup var dataOptions: DataOptions

        func run() throws {
            let store = try dataOptions.openStore()
            let clients = try store.clients.list()
            if clients.isEmpty { print("No clients. Create one with: minihost client create NAME --data \(dataOptions.data)") }
            for client in clients {
                print("\(client.clientKey)\t\(client.scopes)\t\(client.active ? "active" : "revoked")\tcreated \(client.createdAt)")
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke an API client (its uploads stay).")
        @Argument var name: String
        @OptionGroup var dataOptions: DataOptions

        func run() throws {
            let store = try dataOptions.openStore()
            guard try store.clients.revoke(key: name) else { throw CommandFailure("no client named \(name)") }
            print("Revoked client \(name).")
        }
    }
}

struct AdminCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin", abstract: "Manage operator accounts (dashboard sign-in).", subcommands: [Create.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an operator, or set a new password.")
        @Argument var username: String
        @Flag(help: "Read the password from standard input (one line).") var passwordStdin = false
        @OptionGroup var dataOptions: DataOptions

        func run() throws {
            guard passwordStdin else { throw CommandFailure("pass the password on standard input with --password-stdin") }
            guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                throw CommandFailure("no password on standard input")
            }
            let store = try dataOptions.openStore()
            do { try store.operators.set(username: username, password: line) } catch let error as StorageError {
                throw CommandFailure(error.detail)
            }
            print("Operator \(username) can now sign in at POST /api/minihost/admin-login.")
        }
    }
}

struct GC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc", abstract: "Remove stale temporary files, expired upload sessions and blobs nothing references.")
    @OptionGroup var dataOptions: DataOptions
    @Option(help: "Remove temporary files not written to for this many seconds.") var temporaryAge: Double = 3600

    func run() throws {
        let store = try dataOptions.openStore()
        let report = try store.collectGarbage(temporaryFileAge: temporaryAge)
        print("removed \(report.temporaryFilesRemoved) temporary file(s), \(report.sessionsExpired) expired upload session(s), \(report.blobsRemoved) unreferenced blob(s), freed \(report.bytesFreed) bytes, repaired \(report.publicLinksRepaired) public link(s)")
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Re-hash every blob; exit 1 on any mismatch or missing blob.")
    @OptionGroup var dataOptions: DataOptions

    func run() throws {
        let store = try dataOptions.openStore()
        var checked = 0
        let problems = try store.checkIntegrity { _ in checked += 1 }
        for problem in problems { print(problem) }
        print("checked \(checked) blob(s): \(problems.isEmpty ? "all intact" : "\(problems.count) problem(s)")")
        if !problems.isEmpty { throw ExitCode(1) }
    }
}
