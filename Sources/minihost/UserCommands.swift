import ArgumentParser
import Foundation
import Store

struct UserCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Manage accounts of the plain dialect (username + password).",
        subcommands: [Create.self, List.self, Secondary.self, FolderCommand.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a user with a primary password.")
        @Argument var username: String
        @Flag(help: "Read the password from standard input (one line).") var passwordStdin = false
        @Option(help: "Storage quota in MB (none when omitted).") var quotaMb: Int64?
        @OptionGroup var dataOptions: DataOptions

        func run() throws {
            guard passwordStdin else { throw CommandFailure("pass the password on standard input with --password-stdin") }
            guard let password = readLine(strippingNewline: true), !password.isEmpty else {
                throw CommandFailure("no password on standard input")
            }
            let store = try dataOptions.openStore()
            do {
                _ = try store.accounts.createUser(username: username, password: password, quotaBytes: quotaMb.map { $0 << 20 })
            } catch let error as StorageError { throw CommandFailure(error.detail) }
            let root = try store.accounts.rootFolder(username: username)
            print("Created user \(username) (root folder \(root.id!)\(quotaMb.map { ", quota \($0) MB" } ?? "")).")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users and their active secondary passwords.")
        @OptionGroup var dataOptions: DataOptions

        func run() throws {
            let store = try dataOptions.openStore()
            let users = try store.accounts.listUsers()
            if users.isEmpty { print("No users. Create one with: minihost user create NAME --password-stdin --data \(dataOptions.data)") }
            for user in users {
                let quota = user.quotaBytes.map { "\($0 >> 20) MB" } ?? "no quota"
                print("\(user.username)\t\(quota)\troot folder \(try store.accounts.rootFolder(username: user.username).id!)")
                for secondary in try store.accounts.activeSecondaryPasswords(username: user.username) {
                    let scope = secondary.folderScopeId.map { "folder \($0)" } ?? "whole account"
                    let rights = [secondary.canList ? "list" : nil, secondary.canEdit ? "edit" : nil].compactMap { $0 }
                    print("  \(secondary.label)\t\(scope)\t\(rights.isEmpty ? "upload only" : rights.joined(separator: ","))"
                          + "\tlast used \(secondary.lastUsedAt.map { "\($0)" } ?? "never")")
                }
            }
        }
    }

    struct Secondary: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Manage a user's secondary (script) passwords.", subcommands: [Create.self, Revoke.self])

        struct Create: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Create a secondary password; prints it as the last line (shown once).")
            @Argument var username: String
            @Argument var label: String
            @Option(help: "Limit it to this folder and everything below.") var folder: Int64?
            @Flag(help: "It may list files.") var canList = false
            @Flag(help: "It may edit, move and replace files.") var canEdit = false
            @OptionGroup var dataOptions: DataOptions

            func run() throws {
                let store = try dataOptions.openStore()
                let password: String
                do {
                    (_, password) = try store.accounts.createSecondaryPassword(
                        username: username, label: label,
                        options: SecondaryPasswordOptions(folderScopeId: folder, canList: canList, canEdit: canEdit))
                } catch let error as StorageError { throw CommandFailure(error.detail) }
                print("Created secondary password \(label) for \(username)\(folder.map { ", limited to folder \($0)" } ?? "").")
                print(password)
            }
        }

        struct Revoke: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Revoke a secondary password by its label.")
            @Argument var username: String
            @Argument var label: String
            @OptionGroup var dataOptions: DataOptions

            func run() throws {
                let store = try dataOptions.openStore()
                guard try store.accounts.revokeSecondaryPassword(username: username, label: label) else {
                    throw CommandFailure("\(username) has no active secondary password labelled \(label)")
                }
                print("Revoked \(label) for \(username).")
            }
        }
    }

    struct FolderCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "folder", abstract: "Manage a user's folders.", subcommands: [Create.self])

        struct Create: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Create a folder; prints its id as the last line.")
            @Argument var username: String
            @Argument var name: String
            @Option(help: "The parent folder (the user's root when omitted).") var parent: Int64?
            @OptionGroup var dataOptions: DataOptions

            func run() throws {
                let store = try dataOptions.openStore()
                let folder: Folder
                do { folder = try store.accounts.createFolder(username: username, name: name, parentId: parent) } catch let error as StorageError {
                    throw CommandFailure(error.detail)
                }
                print("Created folder \(name) for \(username).")
                print(folder.id!)
            }
        }
    }
}
