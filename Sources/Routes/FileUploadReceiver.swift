import HTTPCore
import Store

/// The `file` part of an upload, stored in a temporary blob, plus the small
/// text fields that came with it.
public struct ReceivedFile {
    public var blob: CompletedBlob
    /// Already sanitized (see ``DisplayName``).
    public var fileName: String
    public var contentType: String
    public var fields: [String: String]
}

/// Where a file part's bytes go as they arrive.
public protocol FileSink: AnyObject {
    var size: Int64 { get }
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Drops whatever was written.
    func abandon()
}

extension BlobWriter: FileSink {}
extension ChunkWriter: FileSink {}

/// A multipart upload's file part, written to a sink but not yet finished,
/// plus the small text fields that came with it.
public struct ReceivedPart<Sink: FileSink> {
    public var sink: Sink
    /// Already sanitized (see ``DisplayName``).
    public var fileName: String
    public var contentType: String
    public var fields: [String: String]
}

/// Streams a multipart upload's file part into a sink (by default a
/// temporary blob, hashed as it goes), stopping at `maxBytes`. Whatever goes
/// wrong, the sink is abandoned before the error reaches the caller.
public struct FileUploadReceiver {
    public let maxBytes: Int64
    public var fileField = "file"
    /// Limit on all other (text) fields together, names included; they are kept in memory.
    public var maxFieldBytes = 64 * 1024
    /// The multipart reader's window (see ``MultipartFormStream``).
    public var bufferSize = 256 * 1024

    public init(maxBytes: Int64) {
        self.maxBytes = maxBytes
    }

    /// Streams the file part into a temporary blob. `beforeFile` sees the
    /// file part's headers (its name) and the text fields that came before
    /// it, before any of its bytes are written: throwing there refuses the
    /// upload without storing it.
    public func receive(_ request: Request, into store: MinihostStore, tooLarge: @autoclosure () -> HTTPError,
                        beforeFile: @escaping (MultipartPartHeaders, [String: String]) throws -> Void = { _, _ in })
        throws -> ReceivedFile {
        let part = try receive(request, tooLarge: tooLarge()) { headers, _, fields in
            try beforeFile(headers, fields)
            return try store.blobs.makeWriter()
        }
        do {
            return ReceivedFile(blob: try part.sink.finish(), fileName: part.fileName, contentType: part.contentType,
                                fields: part.fields)
        } catch {
            part.sink.abandon()
            throw error
        }
    }

    /// Streams the file part into the sink `makeSink` returns when the part
    /// begins. Its second argument is the part's size if the body is that
    /// part followed only by the closing boundary, as curl and browsers send
    /// a lone file; a guess to plan with, not a promise. Its third is the
    /// text fields received so far.
    public func receive<Sink: FileSink>(_ request: Request, tooLarge: @autoclosure () -> HTTPError,
                                        makeSink: @escaping (MultipartPartHeaders, Int64?, [String: String]) throws -> Sink)
        throws -> ReceivedPart<Sink> {
        guard let boundary = MultipartFormStream.boundary(fromContentType: request.contentType) else {
            throw missingFile()
        }
        // The multipart framing adds a little; anything declared beyond that can't fit.
        if let declared = request.contentLength, Int64(declared) > maxBytes + Self.framingAllowance {
            throw tooLarge()
        }
        let closingLength = Int64(boundary.utf8.count + 8)  // CRLF "--" boundary "--" CRLF
        let contentLength = request.contentLength.map(Int64.init)
        let handler = Handler<Sink>(fileField: fileField, maxBytes: maxBytes, maxFieldBytes: maxFieldBytes) { headers, fields in
            try makeSink(headers, contentLength.map { $0 - headers.bodyOffset - closingLength }.flatMap { $0 > 0 ? $0 : nil },
                         fields)
        }
        do {
            try MultipartFormStream.parse(request.body, boundary: boundary, handler: handler, bufferSize: bufferSize)
            guard let sink = handler.sink else { throw missingFile() }
            return ReceivedPart(sink: sink, fileName: handler.fileName, contentType: handler.contentType, fields: handler.fields)
        } catch is FileTooLarge {
            handler.sink?.abandon()
            throw tooLarge()
        } catch {
            handler.sink?.abandon()
            throw error
        }
    }

    /// Room around the file for part headers, the other fields and the
    /// boundaries: nginx's body limit is the file's plus this.
    public static let framingAllowance: Int64 = 192 << 10

    /// What a body without a file part gets; dialects may word it their way.
    public var missingFile: () -> HTTPError = {
        HTTPErrorResponse(.badRequest, "Expected a multipart/form-data body with a file field")
    }

    private struct FileTooLarge: Error {}

    private final class Handler<Sink: FileSink>: MultipartFormHandler {
        let fileField: String
        let maxBytes: Int64
        let maxFieldBytes: Int
        let makeSink: (MultipartPartHeaders, [String: String]) throws -> Sink
        var sink: Sink?
        var fileName = DisplayName.fallback
        var contentType = "application/octet-stream"
        var fields: [String: String] = [:]
        private var fieldBytes = 0
        private var storedBytes = 0
        private enum Current { case file, field(String, [UInt8]), ignored }
        private var current = Current.ignored
        private var sawFile = false

        init(fileField: String, maxBytes: Int64, maxFieldBytes: Int,
             makeSink: @escaping (MultipartPartHeaders, [String: String]) throws -> Sink) {
            self.fileField = fileField
            self.maxBytes = maxBytes
            self.maxFieldBytes = maxFieldBytes
            self.makeSink = makeSink
        }

        func beginPart(_ headers: MultipartPartHeaders) throws {
            let name = headers.name ?? ""
            if name == fileField && !sawFile {
                sawFile = true
                sink = try makeSink(headers, fields)
                fileName = DisplayName.sanitize(headers.fileName)
                contentType = MediaType.sanitize(headers["Content-Type"])
                current = .file
            } else if headers.fileName == nil && !name.isEmpty {
                // Names count against the field budget like values: thousands
                // of empty fields with long names must not hold memory either.
                fieldBytes += name.utf8.count
                guard fieldBytes <= maxFieldBytes else { throw HTTPErrorResponse(.payloadTooLarge, "Form fields too large") }
                current = .field(name, [])
            } else {
                current = .ignored  // a second file, or a nameless part
            }
        }

        func partBody(_ bytes: UnsafeRawBufferPointer) throws {
            switch current {
            case .file:
                guard sink!.size + Int64(bytes.count) <= maxBytes else { throw FileTooLarge() }
                try sink!.write(bytes)
            case .field(let name, var value):
                fieldBytes += bytes.count
                guard fieldBytes <= maxFieldBytes else { throw HTTPErrorResponse(.payloadTooLarge, "Form fields too large") }
                value.append(contentsOf: bytes)
                current = .field(name, value)
            case .ignored:
                break
            }
        }

        func endPart() throws {
            if case .field(let name, let value) = current, fields[name] == nil {
                // Bytes that aren't UTF-8 become U+FFFD, three bytes each: what
                // is kept counts against the budget, not only what arrived.
                let text = String(decoding: value, as: UTF8.self)
                storedBytes += name.utf8.count + text.utf8.count
                guard storedBytes <= maxFieldBytes else { throw HTTPErrorResponse(.payloadTooLarge, "Form fields too large") }
                fields[name] = text
            }
            current = .ignored
        }
    }
}
