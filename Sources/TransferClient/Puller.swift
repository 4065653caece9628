import Foundation
import OpenSSLCrypto

public struct PullResult: Sendable {
    public var path: String
    public var size: Int64
    public var sha256: String
    public var resumed: Bool
}

/// Downloads an upload (`/api/minihost/download`) into `PATH.part`,
/// resuming with `Range` after a dropped connection or an interrupted run,
/// and renames it to `PATH` only once its SHA-256 matches the server's
/// `Repr-Digest`.
public final class Puller {
    let server: String
    let credential: String
    let retries: Int
    let onRetry: (@Sendable (String) -> Void)?

    public init(server: String, credential: String, retries: Int = 10, onRetry: (@Sendable (String) -> Void)? = nil) {
        self.server = server
        self.credential = credential
        self.retries = retries
        self.onRetry = onRetry
    }

    /// `progress` gets the size and the path the download goes to (the
    /// server's file name unless `output` names one).
    public func pull(id: String, output: String?, progress: (_ size: Int64, _ path: String) -> TransferProgress?) throws -> PullResult {
        let url = "\(server)/api/minihost/download?id=\(id.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? id)"
        let authorization = ("Authorization", "Bearer \(credential)")
        let client = try HTTPClient()
        let head = try attempt { try client.perform(TransferRequest(method: "HEAD", url: url, headers: [authorization])) }
        guard head.status == 200 else { throw PushError("the server refused the download: \(head.status)") }
        guard let size = head[header: "Content-Length"].flatMap({ Int64($0) }), let digest = head[header: "Repr-Digest"] else {
            throw PushError("the server didn't say how large the file is or what it holds")
        }
        let path = output ?? Self.fileName(head[header: "Content-Disposition"]) ?? id
        // A name the server chose never replaces a file (it could be anyone's
        // `.bashrc`); a name given with -o may, as curl -o does.
        let replaces = output != nil
        if !replaces, FileManager.default.fileExists(atPath: path) {
            throw PushError("\(path) exists; pass -o to choose where the download goes")
        }
        let partial = path + ".part"
        let descriptor = open(partial, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw PushError("\(partial): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var have = Int64(lseek(descriptor, 0, SEEK_END))
        let resumed = have > 0
        if have > size {
            guard ftruncate(descriptor, 0) == 0 else { throw PushError("\(partial): can't truncate") }
            have = 0
        }
        let reporter = progress(size, path)
        try Backoff(retries: retries, notify: onRetry).run(retryable: Backoff.transient) {
            // Each try continues from what is on disk, so a cut costs only the bytes in flight.
            while have < size {
                let start = have
                let request = TransferRequest(
                    method: "GET", url: url, headers: [authorization, ("Range", "bytes=\(start)-")],
                    receive: { bytes in
                        var done = 0
                        while done < bytes.count {
                            let written = write(descriptor, bytes.baseAddress! + done, bytes.count - done)
                            guard written > 0 else { throw PushError("writing \(partial) failed") }
                            done += written
                        }
                        have += Int64(bytes.count)
                    },
                    progress: { _, received in reporter?.update(part: 0, bytes: start + received) })
                let answer = try client.perform(request)
                guard answer.status == 206 || (answer.status == 200 && start == 0) else {
                    throw PushError("the server answered \(answer.status) to a range request")
                }
            }
        }
        reporter?.finish()
        guard fsync(descriptor) == 0 else { throw PushError("\(partial): fsync failed") }
        let local = try Self.sha256(of: partial)
        guard digest == "sha-256=:\(Data(local).base64EncodedString()):" else {
            try? FileManager.default.removeItem(atPath: partial)
            throw PushError("the downloaded bytes don't match the server's SHA-256; removed \(partial)")
        }
        try Self.place(partial, at: path, replacing: replaces)
        return PullResult(path: path, size: size, sha256: Hex.encode(local), resumed: resumed)
    }

    /// Renames the checked download into place. Without `replacing`, a file
    /// that appeared at `path` meanwhile stays: a hard link fails on an
    /// existing name where a rename would replace it. A file system without
    /// hard links (FAT, some FUSE mounts) gets a check and a rename instead.
    static func place(_ partial: String, at path: String, replacing: Bool) throws {
        let exists = { PushError("\(path) exists; pass -o to choose where the download goes (kept \(partial))") }
        if !replacing {
            if link(partial, path) == 0 {
                unlink(partial)
                return
            }
            guard errno != EEXIST else { throw exists() }
            guard [EPERM, EOPNOTSUPP, ENOSYS, EMLINK].contains(errno) else {
                throw PushError("\(path): \(String(cString: strerror(errno)))")
            }
            guard !FileManager.default.fileExists(atPath: path) else { throw exists() }
        }
        guard rename(partial, path) == 0 else { throw PushError("\(path): \(String(cString: strerror(errno)))") }
    }

    /// The plain file name of a `Content-Disposition` (`filename="…"`), never a path.
    static func fileName(_ disposition: String?) -> String? {
        guard let disposition, let range = disposition.range(of: "filename=\"") else { return nil }
        let rest = disposition[range.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        let name = (String(rest[..<end]) as NSString).lastPathComponent
        return name.isEmpty || name == "." || name == ".." ? nil : name
    }

    static func sha256(of path: String) throws -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw PushError("\(path): can't read") }
        defer { try? handle.close() }
        let hasher = try SHA256Hasher()
        while let block = try handle.read(upToCount: 1 << 20), !block.isEmpty { try hasher.update(Array(block)) }
        return try hasher.finalize()
    }

    private func attempt(_ body: () throws -> TransferResponse) throws -> TransferResponse {
        try Backoff(retries: retries, notify: onRetry).run(retryable: Backoff.transient, body)
    }
}
