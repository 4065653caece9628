import HTTPCore
import Store

/// Streams a raw request body (tus `PATCH`, S3 `PUT`, skysend chunks) into a
/// ``FileSink`` (a temporary blob, or a session's chunk writer) through one
/// fixed buffer, stopping at `maxBytes`. Whatever goes wrong, the sink is
/// abandoned before the error reaches the caller: nothing half-written is kept.
public struct RawBodyReceiver {
    public let maxBytes: Int64
    /// Below malloc's mmap threshold (128 KiB, see `IdleMemoryRelease`), so
    /// each request reuses its thread's heap instead of touching fresh pages
    /// (a tus upload sends one request per `PATCH`). libfcgi hands the body
    /// over 8 KB at a time anyway.
    public var bufferSize = 64 * 1024

    public init(maxBytes: Int64) {
        self.maxBytes = maxBytes
    }

    /// The body in a new temporary blob, finished (fsync'd) and hashed.
    public func receive(_ request: Request, into store: MinihostStore, tooLarge: @autoclosure () -> HTTPError) throws -> CompletedBlob {
        let writer = try receive(request, tooLarge: tooLarge()) { try store.blobs.makeWriter() }
        do {
            return try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
    }

    /// The body in the sink `makeSink` returns, not yet finished. A declared
    /// `Content-Length` past the limit is refused before the sink is made.
    ///
    /// `inspect` sees every block before it is written (a checksum). When the
    /// client goes away mid-body, `keepOnDisconnect` (if given) gets the sink
    /// with what arrived instead of it being abandoned (tus keeps those
    /// bytes); the error is thrown either way.
    public func receive<Sink: FileSink>(_ request: Request, tooLarge: @autoclosure () -> HTTPError,
                                        inspect: ((UnsafeRawBufferPointer) throws -> Void)? = nil,
                                        keepOnDisconnect: ((Sink) throws -> Void)? = nil,
                                        makeSink: () throws -> Sink) throws -> Sink {
        if let declared = request.contentLength, Int64(declared) > maxBytes { throw tooLarge() }
        let sink = try makeSink()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        do {
            while true {
                let count = try request.body.read(into: buffer)
                if count == 0 { break }
                guard sink.size + Int64(count) <= maxBytes else { throw tooLarge() }
                let block = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
                try inspect?(block)
                try sink.write(block)
            }
            if let declared = request.contentLength, Int64(declared) != sink.size {
                throw RequestBodyError(.truncated, "received \(sink.size) of \(declared) bytes")
            }
            return sink
        } catch let error as RequestBodyError where keepOnDisconnect != nil && sink.size > 0 {
            try keepOnDisconnect!(sink)
            throw error
        } catch {
            sink.abandon()
            throw error
        }
    }
}
