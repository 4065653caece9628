import Foundation
import OpenSSLCrypto

/// What `minihost push` needs to know.
public struct PushOptions: Sendable {
    public var server: String
    public var credential: String
    /// Where interrupted pushes are remembered (`~/.local/state/minihost/push`).
    public var stateDirectory: String
    /// Files this large or larger go as this many partial uploads in parallel.
    public var parallel: Int
    public var parallelThreshold: Int64
    /// Bytes per `PATCH`: each is acknowledged (fsync'd) by the server, so a
    /// dropped connection loses at most the one in flight.
    public var patchSize: Int64
    /// Attempts per part after a dropped connection or a busy server.
    public var retries: Int
    /// Told of each retry and its wait, as one line.
    public var onRetry: (@Sendable (String) -> Void)?

    public init(server: String, credential: String, stateDirectory: String, parallel: Int = 4,
                parallelThreshold: Int64 = 1024 << 20, patchSize: Int64 = 64 << 20, retries: Int = 10,
                onRetry: (@Sendable (String) -> Void)? = nil) {
        self.server = server
        self.credential = credential
        self.stateDirectory = stateDirectory
        self.parallel = parallel
        self.parallelThreshold = parallelThreshold
        self.patchSize = patchSize
        self.retries = retries
        self.onRetry = onRetry
    }
}

public struct PushResult: Sendable {
    public var id: String
    public var name: String
    public var size: Int64
    public var sha256: String
    public var downloadURL: String
    /// True when an interrupted push of the same file was resumed.
    public var resumed: Bool
}

/// A push or pull that failed, said for a person. It may quote a server's
/// answer, so what could steer a terminal is shown as `?`.
public struct PushError: Error, CustomStringConvertible {
    /// Whose the failure is, which decides whether the next file is worth trying.
    public struct Code: Equatable, Sendable {
        private let name: String
        /// The local file can't be read as one (missing, a folder, unreadable).
        public static let localFile = Code(name: "localFile")
        /// The server refused this file (too large, over quota, stored other bytes).
        public static let refused = Code(name: "refused")
        /// Anything else: the server unreachable, the credential refused.
        public static let transfer = Code(name: "transfer")
    }

    public let code: Code
    public let description: String

    public init(_ description: String, code: Code = .transfer) {
        self.code = code
        self.description = TerminalText.safe(description)
    }
}

/// Uploads files over tus: one upload, or for large files parallel partial
/// uploads joined by concatenation; retries with backoff from the server's
/// offset after a dropped connection; resumes an interrupted push of the
/// same file (path, size and mtime) from a small state file; checks the
/// server's SHA-256 against the local file at the end.
public final class TusPusher: @unchecked Sendable {
    let options: PushOptions

    public init(options: PushOptions) { self.options = options }

    var tusURL: String { options.server + "/api/tus" }
    var authorization: (String, String) { ("Authorization", "Bearer \(options.credential)") }
    var tusHeaders: [(String, String)] { [("Tus-Resumable", "1.0.0"), authorization] }

    public func push(path: String, contentType: String, progress: (Int64) -> TransferProgress?) throws -> PushResult {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw PushError("\(path): \(String(cString: strerror(errno)))", code: .localFile) }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw PushError("\(path): not a regular file", code: .localFile)
        }
        let size = Int64(info.st_size)
        let name = (path as NSString).lastPathComponent
        let store = try PushStateStore(directory: options.stateDirectory, server: options.server,
                                       path: (path as NSString).standardizingPath, size: size,
                                       mtime: "\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)")
        var state = store.load()
        let resumed = state != nil
        if state == nil { state = PushState(parts: plan(size)) }
        let shared = SharedState(state!, store: store)
        let hasher = LocalHash(descriptor: descriptor, size: size)
        let reporter = progress(size)
        let metadata = "filename \(Data(name.utf8).base64EncodedString()),filetype \(Data(contentType.utf8).base64EncodedString())"
        let parts = shared.snapshot.parts
        let failures = Failures()
        // One thread per part, each blocking on its own connection.
        let lanes = DispatchGroup()
        let partMetadata = parts.count == 1 ? metadata : nil
        for index in parts.indices {
            lanes.enter()
            Thread.detachNewThread {
                defer { lanes.leave() }
                do {
                    try self.upload(part: index, of: shared, descriptor: descriptor, metadata: partMetadata, reporter: reporter)
                } catch {
                    failures.add(error)
                }
            }
        }
        lanes.wait()
        if let failure = failures.first { throw failure }
        let client = try HTTPClient()
        var url = shared.snapshot.finalURL ?? shared.snapshot.parts[0].url!
        if parts.count > 1 && shared.snapshot.finalURL == nil {
            let references = shared.snapshot.parts.map { URLComponents(string: $0.url!)?.path ?? $0.url! }
            let answer = try retrying(client) {
                try client.perform(TransferRequest(method: "POST", url: tusURL, headers: tusHeaders + [
                    ("Upload-Concat", "final;" + references.joined(separator: " ")), ("Upload-Metadata", metadata)]))
            }
            guard answer.status == 201, let location = answer[header: "Location"].flatMap(onServer) else {
                throw PushError("joining the parts was refused: \(answer.status) \(answer.text)")
            }
            url = location
            shared.setFinal(location)
            for part in shared.snapshot.parts {
                _ = try? client.perform(TransferRequest(method: "DELETE", url: part.url!, headers: tusHeaders))
            }
        }
        reporter?.finish()
        let id = String(url.split(separator: "/").last ?? "")
        let download = "\(options.server)/api/minihost/download?id=\(id)"
        let local = try hasher.wait()
        let head = try retrying(client) { try client.perform(TransferRequest(method: "HEAD", url: download, headers: [authorization])) }
        store.remove()
        guard head.status == 200, let digest = head[header: "Repr-Digest"] else {
            throw PushError("the server didn't say what it stored (\(head.status))")
        }
        guard digest == "sha-256=:\(Data(local).base64EncodedString()):" else {
            throw PushError("the server's SHA-256 differs from the local file's: \(digest)", code: .refused)
        }
        return PushResult(id: id, name: name, size: size, sha256: Hex.encode(local), downloadURL: download, resumed: resumed)
    }

    /// An upload URL the server named, on the server the user named: the
    /// credential goes nowhere else, whatever origin the server thinks it
    /// has (behind a proxy it may differ). nil unless it is a tus upload path.
    func onServer(_ location: String) -> String? {
        guard let path = URLComponents(string: location)?.path, path.hasPrefix("/api/tus/"),
              path.dropFirst("/api/tus/".count).allSatisfy({ $0.isHexDigit }) else { return nil }
        return options.server + path
    }

    /// One part, or the whole file in as many parts as lanes when it is large.
    func plan(_ size: Int64) -> [PushState.Part] {
        let count = size >= options.parallelThreshold ? max(1, options.parallel) : 1
        let length = (size + Int64(count) - 1) / Int64(count)
        return (0..<count).map { index in
            let start = Int64(index) * length
            return PushState.Part(start: start, length: max(0, min(length, size - start)), url: nil)
        }.filter { $0.length > 0 || count == 1 }
    }

    /// Creates the part's upload if it has none, then sends what the server
    /// lacks, asking it for the offset after every failure.
    func upload(part index: Int, of shared: SharedState, descriptor: Int32, metadata: String?,
                reporter: TransferProgress?) throws {
        let client = try HTTPClient()
        try Backoff(retries: options.retries, notify: options.onRetry).run(retryable: Backoff.transient) {
            try send(part: index, of: shared, descriptor: descriptor, metadata: metadata, client: client, reporter: reporter)
        }
    }

    private func send(part index: Int, of shared: SharedState, descriptor: Int32, metadata: String?, client: HTTPClient,
                      reporter: TransferProgress?) throws {
        var part = shared.snapshot.parts[index]
        if part.url == nil {
            var headers = tusHeaders + [("Upload-Length", String(part.length))]
            if let metadata { headers.append(("Upload-Metadata", metadata)) }
            if shared.snapshot.parts.count > 1 { headers.append(("Upload-Concat", "partial")) }
            let created = try retryable { try client.perform(TransferRequest(method: "POST", url: tusURL, headers: headers)) }
            guard created.status == 201, let location = created[header: "Location"].flatMap(onServer) else {
                // A credential refused fails every file alike; a size or quota refusal is this file's.
                throw PushError("creating the upload was refused: \(created.status) \(created.text)",
                                code: [401, 403].contains(created.status) ? .transfer : .refused)
            }
            part.url = location
            shared.setURL(location, part: index)
        }
        let url = part.url!
        let head = try retryable { try client.perform(TransferRequest(method: "HEAD", url: url, headers: tusHeaders)) }
        if head.status == 404 {
            // Expired or removed on the server: start this part again.
            shared.setURL(nil, part: index)
            throw RetryableFailure(reason: "the upload is gone from the server; starting it again")
        }
        guard head.status == 200, let offsetText = head[header: "Upload-Offset"], var offset = Int64(offsetText) else {
            throw PushError("asking for the offset was refused: \(head.status)")
        }
        reporter?.update(part: index, bytes: offset)
        while offset < part.length {
            let length = min(options.patchSize, part.length - offset)
            let base = offset
            let answer = try retryable {
                try client.perform(TransferRequest(
                    method: "PATCH", url: url,
                    headers: tusHeaders + [("Upload-Offset", String(offset)), ("Content-Type", "application/offset+octet-stream")],
                    body: .file(descriptor: descriptor, offset: part.start + offset, length: length),
                    progress: { sent, _ in reporter?.update(part: index, bytes: base + sent) }))
            }
            guard answer.status == 204, let next = answer[header: "Upload-Offset"].flatMap({ Int64($0) }) else {
                if [409, 423, 429, 500, 502, 503, 504].contains(answer.status) {
                    throw RetryableFailure(reason: "the server answered \(answer.status)")
                }
                throw PushError("sending bytes was refused: \(answer.status) \(answer.text)")
            }
            offset = next
            reporter?.update(part: index, bytes: offset)
        }
    }

    private func retryable(_ body: () throws -> TransferResponse) throws -> TransferResponse {
        do {
            let response = try body()
            if [429, 502, 503, 504].contains(response.status) { throw RetryableFailure(reason: "the server answered \(response.status)") }
            return response
        } catch let error as TransferError where error.code == .network {
            throw RetryableFailure(reason: error.description)
        }
    }

    /// For the last steps (join, check): retried with backoff.
    private func retrying(_ client: HTTPClient, _ body: () throws -> TransferResponse) throws -> TransferResponse {
        try Backoff(retries: options.retries, notify: options.onRetry).run(retryable: Backoff.transient) { try retryable(body) }
    }
}

/// Errors from parallel lanes.
final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [Error] = []

    func add(_ error: Error) {
        lock.lock()
        errors.append(error)
        lock.unlock()
    }

    var first: Error? {
        lock.lock()
        defer { lock.unlock() }
        return errors.first
    }
}

struct RetryableFailure: Error {
    let reason: String
}

/// The push state all lanes share, saved on every change.
final class SharedState: @unchecked Sendable {
    private var state: PushState
    private let store: PushStateStore
    private let lock = NSLock()

    init(_ state: PushState, store: PushStateStore) {
        self.state = state
        self.store = store
        store.save(state)
    }

    var snapshot: PushState {
        lock.lock()
        defer { lock.unlock() }
        return state
    }

    func setURL(_ url: String?, part: Int) {
        lock.lock()
        defer { lock.unlock() }
        state.parts[part].url = url
        store.save(state)
    }

    func setFinal(_ url: String) {
        lock.lock()
        defer { lock.unlock() }
        state.finalURL = url
        store.save(state)
    }
}

/// SHA-256 of the local file, computed on its own thread while the upload runs.
final class LocalHash: @unchecked Sendable {
    private var result: Result<[UInt8], Error>?
    private let done = DispatchSemaphore(value: 0)

    init(descriptor: Int32, size: Int64) {
        Thread.detachNewThread { [self] in
            result = Result {
                let hasher = try SHA256Hasher()
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
                defer { buffer.deallocate() }
                var offset: Int64 = 0
                while offset < size {
                    let got = pread(descriptor, buffer.baseAddress, buffer.count, off_t(offset))
                    guard got > 0 else { throw PushError("reading the file for its hash failed", code: .localFile) }
                    try hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<got]))
                    offset += Int64(got)
                }
                return try hasher.finalize()
            }
            done.signal()
        }
    }

    func wait() throws -> [UInt8] {
        done.wait()
        return try result!.get()
    }
}
