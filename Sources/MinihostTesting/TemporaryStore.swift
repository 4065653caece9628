import Foundation
import Store

/// A store in a fresh temporary folder, removed when the value goes.
/// For every dialect's and the store's tests.
public final class TemporaryStore: @unchecked Sendable {
    public let root: String
    public let store: MinihostStore

    /// In `parent` (the system's temporary folder by default): tests that
    /// need another file system pass its mount point.
    public init(parent: String = FileManager.default.temporaryDirectory.path,
                configuration: StoreConfiguration = StoreConfiguration()) throws {
        root = parent + "/minihost-test-\(UUID().uuidString)"
        store = try MinihostStore(directory: DataDirectory(root), configuration: configuration)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    /// Streams `bytes` through a blob writer and records them for `owner`.
    public func upload(_ bytes: [UInt8], owner: Owner = .apiClient("app"), name: String = "f.bin") throws -> Upload {
        let writer = try store.blobs.makeWriter()
        try bytes.withUnsafeBytes { try writer.write($0) }
        return try store.commitUpload(try writer.finish(), owner: owner, fileName: name, contentType: "application/octet-stream")
    }

    /// What is left in `tmp/`.
    public func temporaryFiles() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: root + "/tmp")) ?? []
    }
}

/// Values appended from several threads.
public final class LockedList<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Value] = []

    public init() {}

    public var values: [Value] { lock.lock(); defer { lock.unlock() }; return items }
    public func append(_ value: Value) { lock.lock(); items.append(value); lock.unlock() }
}
