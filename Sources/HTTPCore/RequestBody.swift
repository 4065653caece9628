/// The request body as a stream: handlers pull bytes as they need them, so an
/// upload of any size passes through a fixed buffer and never sits in memory whole.
///
/// `read` returns 0 only at the end of the body. A body that ends early because
/// the client went away throws ``RequestBodyError``.
public protocol RequestBody: AnyObject {
    /// Fills up to `buffer.count` bytes and returns how many were read; 0 at the end.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// How many bytes handlers have read so far (for the request log).
    var bytesRead: Int64 { get }
}

extension RequestBody {
    public var bytesRead: Int64 { 0 }
}

/// Why a request body could not be read to its end.
public struct RequestBodyError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable {
        let name: String
        /// The connection broke before the body ended (client or proxy gone).
        public static let interrupted = Code(name: "interrupted")
        /// Fewer bytes arrived than `Content-Length` announced.
        public static let truncated = Code(name: "truncated")
        /// The body is larger than the handler accepts.
        public static let tooLarge = Code(name: "tooLarge")
    }

    public let code: Code
    public let detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { "request body \(code.name): \(detail)" }
}

extension RequestBody {
    /// Reads the whole body, refusing more than `limit` bytes. For small bodies
    /// (JSON, forms) only: anything file-sized must be streamed.
    public func collect(upTo limit: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = try chunk.withUnsafeMutableBytes { try read(into: $0) }
            if count == 0 { return out }
            guard out.count + count <= limit else {
                throw RequestBodyError(.tooLarge, "body exceeds \(limit) bytes")
            }
            out.append(contentsOf: chunk[0..<count])
        }
    }

    /// Reads and discards whatever is left, so the connection ends cleanly.
    public func drain() throws {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while try chunk.withUnsafeMutableBytes({ try read(into: $0) }) > 0 {}
    }
}

/// A body held in memory: for tests and for requests that carry none.
public final class BufferedRequestBody: RequestBody {
    private let bytes: [UInt8]
    private var offset = 0
    private let chunkLimit: Int

    /// `chunkLimit` caps each read, so tests can exercise parsers on small pieces.
    public init(_ bytes: [UInt8] = [], chunkLimit: Int = .max) {
        self.bytes = bytes
        self.chunkLimit = chunkLimit
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let count = min(buffer.count, bytes.count - offset, chunkLimit)
        guard count > 0 else { return 0 }
        bytes.withUnsafeBytes { source in
            buffer.baseAddress!.copyMemory(from: source.baseAddress! + offset, byteCount: count)
        }
        offset += count
        return count
    }
}
