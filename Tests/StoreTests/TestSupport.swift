import Foundation
@testable import Store

/// A store in a fresh temporary folder, removed when the test ends.
final class TemporaryStore: @unchecked Sendable {
    let root: String
    let store: MinihostStore

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("minihost-test-\(UUID().uuidString)").path
        store = try MinihostStore(directory: DataDirectory(root))
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    /// Streams `bytes` through a blob writer and records them for `owner`.
    func upload(_ bytes: [UInt8], owner: Owner = .apiClient("app"), name: String = "f.bin") throws -> Upload {
        let writer = try store.blobs.makeWriter()
        try bytes.withUnsafeBytes { try writer.write($0) }
        return try store.commitUpload(try writer.finish(), owner: owner, fileName: name, contentType: "application/octet-stream")
    }

    func temporaryFiles() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: root + "/tmp")) ?? []
    }
}
