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

/// Streams a multipart upload's file part into the blob store's temporary
/// area, hashing as it goes and stopping at `maxBytes`. Whatever goes wrong,
/// the temporary file is gone before the error reaches the caller.
public struct FileUploadReceiver {
    public let store: MinihostStore
    public let maxBytes: Int64
    public var fileField = "file"
    /// Limit on all other (text) fields together; they are kept in memory.
    public var maxFieldBytes = 64 * 1024

    public init(store: MinihostStore, maxBytes: Int64) {
        self.store = store
        self.maxBytes = maxBytes
    }

    public func receive(_ request: Request, tooLarge: @autoclosure () -> HTTPError) throws -> ReceivedFile {
        guard let boundary = MultipartFormStream.boundary(fromContentType: request.contentType) else {
            throw HTTPErrorResponse(.badRequest, "Expected multipart/form-data with a \(fileField) field")
        }
        // The multipart framing adds a little; anything declared beyond that can't fit.
        if let declared = request.contentLength, Int64(declared) > maxBytes + Int64(maxFieldBytes) + 16 * 1024 {
            throw tooLarge()
        }
        let sink = Sink(store: store, fileField: fileField, maxBytes: maxBytes, maxFieldBytes: maxFieldBytes)
        do {
            try MultipartFormStream.parse(request.body, boundary: boundary, handler: sink)
            guard let writer = sink.writer else {
                throw HTTPErrorResponse(.badRequest, "Missing \(fileField) field in multipart body")
            }
            let blob = try writer.finish()
            sink.writer = nil
            return ReceivedFile(blob: blob, fileName: sink.fileName, contentType: sink.contentType, fields: sink.fields)
        } catch is Sink.FileTooLarge {
            sink.writer?.abandon()
            throw tooLarge()
        } catch {
            sink.writer?.abandon()
            throw error
        }
    }

    private final class Sink: MultipartFormHandler {
        struct FileTooLarge: Error {}

        let store: MinihostStore
        let fileField: String
        let maxBytes: Int64
        let maxFieldBytes: Int
        var writer: BlobWriter?
        var fileName = DisplayName.fallback
        var contentType = "application/octet-stream"
        var fields: [String: String] = [:]
        private var fieldBytes = 0
        private enum Current { case file, field(String, [UInt8]), ignored }
        private var current = Current.ignored
        private var sawFile = false

        init(store: MinihostStore, fileField: String, maxBytes: Int64, maxFieldBytes: Int) {
            self.store = store
            self.fileField = fileField
            self.maxBytes = maxBytes
            self.maxFieldBytes = maxFieldBytes
        }

        func beginPart(_ headers: MultipartPartHeaders) throws {
            let name = headers.name ?? ""
            if name == fileField && !sawFile {
                sawFile = true
                writer = try store.blobs.makeWriter()
                fileName = DisplayName.sanitize(headers.fileName)
                contentType = MediaType.sanitize(headers["Content-Type"])
                current = .file
            } else if headers.fileName == nil && !name.isEmpty {
                current = .field(name, [])
            } else {
                current = .ignored  // a second file, or a nameless part
            }
        }

        func partBody(_ bytes: UnsafeRawBufferPointer) throws {
            switch current {
            case .file:
                guard writer!.size + Int64(bytes.count) <= maxBytes else { throw FileTooLarge() }
                try writer!.write(bytes)
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
                fields[name] = String(decoding: value, as: UTF8.self)
            }
            current = .ignored
        }
    }
}

/// Content types as recorded for uploads: `type/subtype` with optional
/// parameters, printable ASCII only; anything else is `application/octet-stream`.
public enum MediaType {
    public static func sanitize(_ raw: String?) -> String {
        guard let raw = raw?.trimmingWhitespace(), !raw.isEmpty, raw.utf8.count <= 255,
              raw.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7F }) else { return "application/octet-stream" }
        let mediaType = raw.split(separator: ";", maxSplits: 1)[0].trimmingWhitespace()
        let parts = mediaType.split(separator: "/", omittingEmptySubsequences: false)
        let token = { (part: Substring) in !part.isEmpty && part.unicodeScalars.allSatisfy { scalar in
            scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "!#$&^_.+-".unicodeScalars.contains(scalar)
        } }
        guard parts.count == 2, token(parts[0]), token(parts[1]) else { return "application/octet-stream" }
        return raw
    }
}
