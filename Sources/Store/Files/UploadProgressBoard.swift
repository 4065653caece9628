import Foundation
import Glibc
import OpenSSLCrypto

/// How far uploads in flight have come, readable from any worker process:
/// one small file per upload name under `progress/`, which the receiving
/// request rewrites as bytes arrive and an event stream polls. Files, not
/// rows: a watcher holds no database connection while it waits, and a
/// progress tick costs a `pwrite`, not a transaction.
public struct UploadProgressBoard: Sendable {
    let path: String

    public enum State: Int64, Sendable {
        case receiving = 0, complete = 1, failed = 2
    }

    /// One reading: bytes received so far, the total if known, and the state.
    public struct Reading: Sendable, Equatable {
        public var received: Int64
        public var total: Int64?
        public var state: State
        public var updatedAt: Date
    }

    /// The file for `name` (a dialect's key for the upload): its SHA-256, so
    /// no name becomes a path.
    func file(_ name: String) -> String {
        path + "/" + ((try? SHA256Hasher.hexDigest(of: Array(name.utf8))) ?? "invalid")
    }

    /// Starts tracking an upload under `name`, replacing an earlier one's record.
    public func start(_ name: String, total: Int64?) -> UploadProgress {
        let descriptor = open(file(name), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        let progress = UploadProgress(descriptor: descriptor, total: total)
        progress.publish(state: .receiving, force: true)
        return progress
    }

    /// The latest reading for `name`, or nil if no upload by that name was seen.
    public func read(_ name: String) -> Reading? {
        let descriptor = open(file(name), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var values = [Int64](repeating: 0, count: 4)
        let count = values.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count == 32, let state = State(rawValue: Int64(littleEndian: values[2])) else { return nil }
        let total = Int64(littleEndian: values[1])
        return Reading(received: Int64(littleEndian: values[0]), total: total >= 0 ? total : nil, state: state,
                       updatedAt: Date(timeIntervalSince1970: Double(Int64(littleEndian: values[3])) / 1000))
    }

    /// Removes records of uploads that ended or stalled over `age` seconds ago.
    public func sweep(olderThan age: TimeInterval) -> Int {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return 0 }
        var removed = 0
        let cutoff = Date().addingTimeInterval(-age).timeIntervalSince1970
        for name in names where name.utf8.count == 64 {
            var info = stat()
            guard lstat(path + "/" + name, &info) == 0, Double(info.st_mtim.tv_sec) < cutoff else { continue }
            if unlink(path + "/" + name) == 0 { removed += 1 }
        }
        return removed
    }
}

/// One upload's record on the board, written by the request receiving it.
/// Ticks are throttled (every 1 MiB or 200 ms); failures to write are
/// ignored, since progress is advice and the upload must not fail for it.
public final class UploadProgress: @unchecked Sendable {
    private let descriptor: Int32
    private var total: Int64?
    private var received: Int64 = 0
    private var lastPublished: (bytes: Int64, time: UInt64) = (0, 0)

    init(descriptor: Int32, total: Int64?) {
        self.descriptor = descriptor
        self.total = total
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// The size the upload will have, once known (a multipart body's file
    /// part is smaller than the body's `Content-Length`).
    public func expect(total: Int64?) {
        self.total = total
        publish(state: .receiving, force: true)
    }

    /// Counts `count` more bytes received.
    public func advance(by count: Int) {
        received += Int64(count)
        let now = DispatchTime.now().uptimeNanoseconds
        if received - lastPublished.bytes >= 1 << 20 || now - lastPublished.time >= 200_000_000 {
            publish(state: .receiving, force: false)
        }
    }

    public func finish(_ state: UploadProgressBoard.State) {
        publish(state: state, force: true)
    }

    func publish(state: UploadProgressBoard.State, force: Bool) {
        guard descriptor >= 0 else { return }
        lastPublished = (received, DispatchTime.now().uptimeNanoseconds)
        let millis = Int64(Date().timeIntervalSince1970 * 1000)
        let values: [Int64] = [received.littleEndian, (total ?? -1).littleEndian, state.rawValue.littleEndian, millis.littleEndian]
        _ = values.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
    }
}

extension MinihostStore {
    /// Uploads in flight, for progress streams.
    public var uploadProgress: UploadProgressBoard { UploadProgressBoard(path: directory.progressPath) }
}
