import Foundation
import GRDB
import MinihostTesting
import Synchronization
import Testing
@testable import Store

/// Remembered API clients: fast for the same credential, and ended at once by
/// any change to any client, from any process.
@Suite struct AuthenticatedClientsTests {
    /// Deactivates a client behind the store's back, so only a remembered
    /// client can still authenticate: shows whether an answer came from memory.
    private func deactivateDirectly(_ key: String, in store: MinihostStore) throws {
        try store.database.write { try $0.execute(sql: "UPDATE minihost_api_clients SET active = 0 WHERE client_key = ?", arguments: [key]) }
    }

    @Test func aSuccessIsRememberedForTheSameSecretOnly() throws {
        let fixture = try TemporaryStore()
        let secret = try fixture.store.clients.create(key: "app", scopes: ["download"])
        #expect(try fixture.store.clients.authenticate(key: "app", secret: secret)?.clientKey == "app")
        try deactivateDirectly("app", in: fixture.store)
        #expect(try fixture.store.clients.authenticate(key: "app", secret: secret)?.clientKey == "app")
        #expect(try fixture.store.clients.authenticate(key: "app", secret: secret + "0") == nil)
        #expect(try fixture.store.clients.authenticate(key: "app", secret: String(secret.dropLast())) == nil)
    }

    /// The kernel hands each request to whichever worker thread is idle: a
    /// success on one thread is remembered on the others too.
    @Test func aSuccessIsRememberedOnEveryThread() throws {
        let fixture = try TemporaryStore()
        let secret = try fixture.store.clients.create(key: "app", scopes: ["upload"])
        #expect(try fixture.store.clients.authenticate(key: "app", secret: secret)?.clientKey == "app")
        try deactivateDirectly("app", in: fixture.store)
        let store = fixture.store
        let found = Mutex<[String?]>([])
        for _ in 0..<3 {
            let done = DispatchSemaphore(value: 0)
            let thread = Thread {
                let key = try? store.clients.authenticate(key: "app", secret: secret)?.clientKey
                let wrong = try? store.clients.authenticate(key: "app", secret: secret + "0")?.clientKey
                found.withLock { $0 += [key, wrong] }
                done.signal()
            }
            thread.start()
            done.wait()
        }
        #expect(found.withLock { $0 } == ["app", nil, "app", nil, "app", nil])
    }

    @Test func anotherProcessRevokingEndsItAtOnce() throws {
        let fixture = try TemporaryStore()
        let secret = try fixture.store.clients.create(key: "app", scopes: ["download"])
        let keep = try fixture.store.clients.create(key: "other", scopes: ["download"])
        #expect(try fixture.store.clients.authenticate(key: "app", secret: secret) != nil)
        #expect(try fixture.store.clients.authenticate(key: "other", secret: keep) != nil)
        // A second store on the same folder stands in for `minihost client revoke`.
        let cli = try MinihostStore(directory: fixture.store.directory, configuration: fixture.store.configuration)
        #expect(try cli.clients.revoke(key: "app"))
        #expect(try fixture.store.clients.authenticate(key: "app", secret: secret) == nil)
        #expect(try fixture.store.clients.authenticate(key: "other", secret: keep)?.clientKey == "other")
    }

    @Test func aStampFromBeforeAChangeIsNeverTrusted() throws {
        let fixture = try TemporaryStore()
        let secret = try fixture.store.clients.create(key: "app", scopes: ["download"])
        let client = try #require(try fixture.store.clients.authenticate(key: "app", secret: secret))
        let generation = fixture.store.authenticatedClients.generation
        let before = generation.current()
        // What a reader that read the row just before a revocation would keep.
        fixture.store.authenticatedClients.remember(client, stampedWith: before)
        _ = try fixture.store.clients.create(key: "unrelated", scopes: ["upload"])
        #expect(generation.current() > before)
        #expect(fixture.store.authenticatedClients.client(key: "app", presentedHash: client.secretHash,
                                                          current: generation.current()) == nil)
    }

    @Test func aFileLeftAheadOfTheDatabaseIsReconciledAtOpen() throws {
        let fixture = try TemporaryStore()
        let secret = try fixture.store.clients.create(key: "app", scopes: ["download"])
        // A change whose transaction rolled back after the file moved.
        #expect(throws: CancellationError.self) {
            try fixture.store.database.write { db in
                try fixture.store.authenticatedClients.generation.advance(db)
                throw CancellationError()
            }
        }
        let reopened = try MinihostStore(directory: fixture.store.directory, configuration: fixture.store.configuration)
        #expect(try reopened.clients.authenticate(key: "app", secret: secret) != nil)
        try deactivateDirectly("app", in: reopened)
        #expect(try reopened.clients.authenticate(key: "app", secret: secret) != nil, "remembered again after the reconcile")
    }

    /// The counter is read through a mapping, which faults on a page past
    /// the file's end: an empty or short file (no stamp) is filled out first.
    @Test func anEmptyGenerationFileReadsAsNoStamp() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("generation-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("credential-generation").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data([1, 2, 3])))
        #expect(try CredentialGeneration(path: path).current() == 0, "a short file holds no stamp")
        try Data().write(to: URL(fileURLWithPath: path))
        #expect(try CredentialGeneration(path: path).current() == 0)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == 8)
    }

    @Test func scopesMatchWholeNamesOnly() {
        let client = APIClient(clientKey: "app", secretHash: "", scopes: "upload,download", active: true,
                               createdAt: Date(), revokedAt: nil)
        #expect(client.has(scope: "upload") && client.has(scope: "download"))
        for other in ["up", "load", "", "upload,download", "publish", "download,"] {
            #expect(!client.has(scope: other), "\(other)")
        }
    }
}
