import Foundation
import OpenSSLCrypto

/// An interrupted push: its parts' upload URLs, and the joined upload's.
struct PushState: Codable {
    struct Part: Codable {
        var start: Int64
        var length: Int64
        var url: String?
    }

    var parts: [Part]
    var finalURL: String?
}

/// Push states on disk, one small JSON file per (server, path, size, mtime):
/// a changed file is a new push, an unchanged one resumes.
struct PushStateStore {
    let file: String

    init(directory: String, server: String, path: String, size: Int64, mtime: String) throws {
        let key = try SHA256Hasher.hexDigest(of: Array("\(server)\n\(path)\n\(size)\n\(mtime)".utf8))
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        file = directory + "/" + key + ".json"
    }

    func load() -> PushState? {
        guard let data = FileManager.default.contents(atPath: file) else { return nil }
        return try? JSONDecoder().decode(PushState.self, from: data)
    }

    /// Written whole to a temporary file and renamed, so a crash leaves the old or the new state.
    func save(_ state: PushState) {
        guard let data = try? JSONEncoder().encode(state) else { return }
        let temporary = file + ".tmp"
        if FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]) {
            _ = rename(temporary, file)
        }
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: file)
    }
}
