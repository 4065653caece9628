import Foundation
import HTTPCore
import Store

extension S4Routes {
    /// `GET /api/buckets`.
    func listBuckets(_ route: RouteRequest) throws -> Response {
        let username = route.identity(OperatorIdentity.self).username
        let buckets = try store.s4.buckets().map { bucket -> [String: Any] in
            ["Name": bucket.name, "CreationDate": ISO8601Timestamp.format(bucket.createdAt), "ReadOnly": bucket.isReadOnly]
        }
        return JSONResponse.make([
            "owner": ["DisplayName": username, "ID": username],
            "defaultBucket": configuration.defaultBucket,
            "buckets": buckets,
        ])
    }

    /// `POST /api/buckets` `{bucketName}` (or `name`).
    func createBucket(_ route: RouteRequest) throws -> Response {
        guard let name = try route.json.string("bucketName", "name", "bucket") else {
            throw HTTPErrorResponse(.badRequest, "bucketName is required", code: "InvalidBucketName")
        }
        if let problem = S4BucketName.problem(name) {
            throw HTTPErrorResponse(.badRequest, problem, code: "InvalidBucketName")
        }
        do {
            try store.s4.createBucket(name)
        } catch let error as StorageError where error.code == .conflict {
            throw HTTPErrorResponse(.conflict, "Bucket \(name) already exists", code: "BucketAlreadyExists")
        }
        return JSONResponse.make(["message": "Bucket created successfully", "bucket": name], status: .created)
    }

    /// `DELETE /api/buckets/:bucket`: only an empty one.
    func deleteBucket(_ route: RouteRequest) throws -> Response {
        let name = route[parameter: "bucket"]
        switch try store.s4.deleteBucket(name) {
        case .deleted: return JSONResponse.make(["message": "Bucket deleted successfully"])
        case .notFound: throw HTTPErrorResponse(.notFound, "Bucket \(name) does not exist", code: "NoSuchBucket")
        case .notEmpty: throw HTTPErrorResponse(.conflict, "Bucket \(name) is not empty", code: "BucketNotEmpty")
        case .readOnly: throw HTTPErrorResponse(.forbidden, "Bucket \(name) is an API client's uploads: read-only", code: "AccessDenied")
        }
    }

    /// `GET /api/objects/:bucket[/:b64prefix]`: one page, delimiter `/`;
    /// `q` with `mode=startsWith` (default) or `contains` searches.
    func listObjects(_ route: RouteRequest) throws -> Response {
        let bucket = try bucket(route)
        let query = route.request.query
        let prefix = route.parameters["prefix"] == nil ? "" : try S4Key.decode(route[parameter: "prefix"], what: "prefix")
        var maxKeys = 500
        if let text = query["maxKeys"], !text.isEmpty {
            guard let value = Int(text), (1...2000).contains(value) else {
                throw HTTPErrorResponse(.badRequest, "maxKeys must be a whole number from 1 to 2000", code: "BadRequest")
            }
            maxKeys = value
        }
        var cursor: S4ListingCursor?
        if let token = query["continuationToken"], !token.isEmpty {
            guard let bytes = Base64URL.decode(token), let text = String(validating: bytes, as: UTF8.self),
                  let parsed = S4ListingCursor(encoded: text) else {
                throw HTTPErrorResponse(.badRequest, "Invalid continuation token", code: "InvalidToken")
            }
            cursor = parsed
        }
        let listing: S4Listing
        let search = query["q"] ?? ""
        if search.isEmpty {
            listing = try store.s4.list(bucket, prefix: prefix, delimiter: true, after: cursor, maxKeys: maxKeys)
        } else {
            guard search.utf8.count <= S4Store.maxKeyBytes, !search.utf8.contains(0) else {
                throw HTTPErrorResponse(.badRequest, "q is too long", code: "BadRequest")
            }
            switch query["mode"] ?? "startsWith" {
            case "startsWith":
                listing = try store.s4.list(bucket, prefix: prefix + search, delimiter: true, after: cursor, maxKeys: maxKeys)
            case "contains":
                try limit(route.request, action: "contains-search", count: 5, words: "contains searches")
                listing = try store.s4.search(bucket, prefix: prefix, containing: search, after: cursor, maxKeys: maxKeys)
            default:
                throw HTTPErrorResponse(.badRequest, "mode must be startsWith or contains", code: "BadRequest")
            }
        }
        return Self.listingAnswer(listing)
    }

    /// A page as upstream answers it, with S3's field names:
    /// `{isTruncated, nextContinuationToken (or null), objects: [{ETag, Key,
    /// LastModified, Size, StorageClass}], prefixes: [{Prefix}]}`.
    static func listingAnswer(_ listing: S4Listing) -> Response {
        var json = JSONBytes(capacity: 256 + listing.objects.count * 200 + listing.prefixes.count * 64)
        json.raw("{\"isTruncated\":")
        json.bool(listing.isTruncated)
        json.raw(",\"nextContinuationToken\":")
        if let token = listing.nextToken { json.string(Base64URL.encode(Array(token.utf8))) } else { json.null() }
        json.raw(",\"objects\":[")
        for (index, object) in listing.objects.enumerated() {
            json.raw(index == 0 ? "{\"ETag\":\"\\\"" : ",{\"ETag\":\"\\\"")
            json.stringContents(object.etag)
            json.raw("\\\"\"")
            json.raw(",\"Key\":")
            json.string(object.key)
            json.raw(",\"LastModified\":")
            json.timestamp(object.lastModified)
            json.raw(",\"Size\":")
            json.number(object.size)
            json.raw(",\"StorageClass\":\"STANDARD\"}")
        }
        json.raw("],\"prefixes\":[")
        for (index, prefix) in listing.prefixes.enumerated() {
            json.raw(index == 0 ? "{\"Prefix\":" : ",{\"Prefix\":")
            json.string(prefix)
            json.raw("}")
        }
        json.raw("]}")
        return json.response()
    }

    /// `POST /api/objects/upload/:bucket/:b64key`: multipart field `file`,
    /// streamed to a blob; the key then points at it in one transaction.
    /// Progress is published for `GET /api/objects/upload-progress/:b64key`.
    func uploadObject(_ route: RouteRequest) throws -> Response {
        let bucket = try bucket(route)
        guard !bucket.isReadOnly else {
            throw HTTPErrorResponse(.forbidden, "Bucket \(bucket.name) is an API client's uploads: read-only", code: "AccessDenied")
        }
        let key = try S4Key.decode(route[parameter: "key"])
        let metadata = try Self.userMetadata(route.request.headers)
        let request = route.request
        let progress = store.uploadProgress.start(Self.progressName(key), total: nil)
        do {
            let maxBytes = configuration.maxUploadBytes
            let part = try FileUploadReceiver(maxBytes: maxBytes).receive(
                request, tooLarge: HTTPErrorResponse(.payloadTooLarge, "File exceeds the maximum of \(maxBytes) bytes",
                                                     code: "EntityTooLarge")) { _, partSize, _ in
                progress.expect(total: partSize)
                return ProgressSink(base: try store.blobs.makeWriter(), progress: progress)
            }
            let blob: CompletedBlob
            do { blob = try part.sink.base.finish() } catch {
                part.sink.abandon()
                throw error
            }
            let contentType = part.contentType == "application/octet-stream"
                ? MediaTypeGuess.forFileName(key) : part.contentType
            let object: S4Object
            do {
                object = try store.s4.put(blob, bucket: bucket.name, key: key, contentType: contentType, metadata: metadata)
            } catch let error as StorageError where error.code == .notFound {
                // Deleted while the bytes arrived; put stored nothing.
                throw HTTPErrorResponse(.notFound, "Bucket \(bucket.name) does not exist", code: "NoSuchBucket")
            }
            progress.finish(.complete)
            return JSONResponse.make(["message": "Object uploaded successfully", "key": object.key, "size": object.size,
                                      "etag": "\"\(object.etag)\""])
        } catch {
            progress.finish(.failed)
            throw error
        }
    }

    /// `GET /api/objects/download/:bucket/:b64key`: nginx serves the bytes (Range works).
    func downloadObject(_ route: RouteRequest) throws -> Response {
        let (_, upload) = try object(route)
        var response = StoredContent.response(upload, store: store, request: route.request, disposition: .attachment,
                                              cacheControl: "private, no-store")
        response.headers.set("ETag", "\"\(upload.sha256)\"")
        return response
    }

    /// `GET /api/objects/metadata/…` and `/api/objects/view/…`.
    func objectMetadata(_ route: RouteRequest) throws -> Response {
        let (object, upload) = try object(route)
        let metadata = MinihostStore.decodePayload(object.metadata)
        return JSONResponse.make([
            "key": object.key, "size": object.size, "lastModified": ISO8601Timestamp.format(object.lastModified),
            "etag": "\"\(object.etag)\"", "contentType": MediaType.sanitize(upload.contentType), "metadata": metadata,
            "storageClass": "STANDARD",
        ])
    }

    /// `DELETE /api/objects/:bucket/:b64key`: the key and every key under it as a prefix.
    func deleteObjects(_ route: RouteRequest) throws -> Response {
        let bucket = try bucket(route)
        guard !bucket.isReadOnly else {
            throw HTTPErrorResponse(.forbidden, "Bucket \(bucket.name) is an API client's uploads: read-only", code: "AccessDenied")
        }
        let key = try S4Key.decode(route[parameter: "prefix"])
        let count = try store.s4.delete(bucket: bucket.name, prefix: key)
        return JSONResponse.make(["message": "Successfully deleted \(count) object(s)", "count": count])
    }

    private func object(_ route: RouteRequest) throws -> (S4Object, Upload) {
        let bucket = try bucket(route)
        let key = try S4Key.decode(route[parameter: "key"])
        guard let found = try store.s4.object(bucket: bucket, key: key) else {
            throw HTTPErrorResponse(.notFound, "The specified key does not exist", code: "NoSuchKey")
        }
        return found
    }

    /// The board's name for an upload of `key` (the progress route has no bucket).
    static func progressName(_ key: String) -> String { "s4-object:" + key }

    /// `X-Amz-Meta-*` headers as a JSON object (names lowercased, prefix
    /// dropped), at most 2 KB together as S3 allows; nil when there are none.
    static func userMetadata(_ headers: HTTPHeaders) throws -> String? {
        var values: [String: String] = [:]
        var size = 0
        for field in headers where field.name.lowercased().hasPrefix("x-amz-meta-") {
            let name = String(field.name.lowercased().dropFirst("x-amz-meta-".count))
            guard !name.isEmpty else { continue }
            size += name.utf8.count + field.value.utf8.count
            values[name] = field.value
        }
        guard size <= 2048 else {
            throw HTTPErrorResponse(.badRequest, "User metadata exceeds 2 KB", code: "MetadataTooLarge")
        }
        guard !values.isEmpty else { return nil }
        let data = try JSONSerialization.data(withJSONObject: values, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}

/// A sink that counts what passes through it on an upload's progress record.
final class ProgressSink<Base: FileSink>: FileSink {
    let base: Base
    let progress: UploadProgress

    init(base: Base, progress: UploadProgress) {
        self.base = base
        self.progress = progress
    }

    var size: Int64 { base.size }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try base.write(bytes)
        progress.advance(by: bytes.count)
    }

    func abandon() { base.abandon() }
}
