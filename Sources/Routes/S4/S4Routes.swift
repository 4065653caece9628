import Foundation
import HTTPCore
import Store

/// The s4 dialect (`s4-api.txt`): a storage browser's API over buckets and
/// objects, local directories, and settings, served from minihost's own
/// core rather than a separate S3 server. Errors are `{"error": Name,
/// "message": …}`; every route but login and auth info needs an operator's
/// token (``S4Auth``).
///
/// Keys and local paths travel base64-encoded in the path (``S4Key``), in
/// a catch-all, since the standard alphabet has `/`.
struct S4Routes: DialectRoutes, ContextRoutes {
    let context: ServerContext

    init(_ context: ServerContext) { self.context = context }

    var configuration: S4Configuration { context.configuration.s4 }

    static let api = "s4"

    /// Upstream's error body: the error's name and a message.
    static let dialect = Dialect(name: "s4") { answer in
        var object: [String: Any] = ["error": answer.code ?? errorName(answer.status), "message": answer.message]
        for (key, value) in answer.details { object[key] = Int(value).map { $0 as Any } ?? value }
        var response = JSONResponse.make(object, status: answer.status)
        response.headers.set("Cache-Control", "no-store")
        return response
    }

    static func errorName(_ status: HTTPStatus) -> String {
        switch status.code {
        case 400: return "BadRequest"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "NotFound"
        case 405: return "MethodNotAllowed"
        case 409: return "Conflict"
        case 413: return "EntityTooLarge"
        case 429: return "RateLimitExceeded"
        case 503: return "ServiceUnavailable"
        case 507: return "InsufficientStorage"
        default: return "InternalError"
        }
    }

    static func register(in table: inout RouteTable, configuration: ServerConfiguration) {
        let token = S4Auth.token(configuration.s4)
        table.group(dialect, prefix: "/api") { api in
            api.add("GET", "/auth/info") { Self($0.server).authInfo($0) }
            api.add("POST", "/auth/login", body: .json(limit: 16 << 10), limit: .login) { try Self($0.server).login($0) }
            api.add("POST", "/auth/logout", body: .json(limit: 16 << 10, optional: true)) { try Self($0.server).logout($0) }
            api.add("GET", "/auth/me", auth: token) { Self($0.server).me($0) }
            api.add("POST", "/auth/sse-ticket", auth: token, body: .json(limit: 16 << 10)) {
                try Self($0.server).issueTicket($0)
            }
        }
        table.group(dialect, prefix: "/api", auth: token) { api in
            let bucket = ["bucket": S4BucketName.parameter]
            api.add("GET", "/buckets") { try Self($0.server).listBuckets($0) }
            api.add("POST", "/buckets", body: .json(limit: 16 << 10)) { try Self($0.server).createBucket($0) }
            api.add("DELETE", "/buckets/:bucket", constraints: bucket) { try Self($0.server).deleteBucket($0) }

            api.add("GET", "/objects/:bucket", constraints: bucket) { try Self($0.server).listObjects($0) }
            api.add("GET", "/objects/:bucket/*prefix", constraints: bucket) { try Self($0.server).listObjects($0) }
            let maxUpload = configuration.s4.maxUploadBytes
            api.add("POST", "/objects/upload/:bucket/*key", constraints: bucket,
                    body: .multipart(limit: maxUpload, streamed: true, tooLarge: "File exceeds the maximum of \(maxUpload) bytes"),
                    limit: .upload) { try Self($0.server).uploadObject($0) }
            api.add("GET", "/objects/download/:bucket/*key", constraints: bucket) {
                try Self($0.server).downloadObject($0)
            }
            api.add("DELETE", "/objects/:bucket/*prefix", constraints: bucket) { try Self($0.server).deleteObjects($0) }
            api.add("GET", "/objects/view/:bucket/*key", constraints: bucket) { try Self($0.server).objectMetadata($0) }
            api.add("GET", "/objects/metadata/:bucket/*key", constraints: bucket) { try Self($0.server).objectMetadata($0) }
            api.add("GET", "/objects/upload-progress/*key", auth: S4Auth.stream(configuration.s4), streamsResponse: true) {
                try Self($0.server).uploadProgress($0)
            }
        }
        S4LocalRoutes.register(in: &table, token: token, configuration: configuration.s4)
        S4SettingsRoutes.register(in: &table, token: token)
    }

    /// The bucket named in the path, or 404 `NoSuchBucket`.
    func bucket(_ route: RouteRequest) throws -> S4Bucket {
        let name = route[parameter: "bucket"]
        guard let bucket = try store.s4.bucket(name) else {
            throw HTTPErrorResponse(.notFound, "Bucket \(name) does not exist", code: "NoSuchBucket")
        }
        return bucket
    }
}

/// S3's bucket naming rules, and the names the s4 routes keep for themselves.
enum S4BucketName {
    /// Path literals after `/api/objects/`: a bucket can't be called these.
    static let reserved: Set<String> = ["upload", "download", "view", "metadata", "upload-progress", "huggingface-import"]

    /// Any segment: S3 names, and `app:<client key>` for API clients' buckets.
    static let parameter = ParameterConstraint.characters(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:", count: 1...80,
        regexClass: "a-zA-Z0-9._:-", example: "my-bucket")

    /// Why `name` can't be a new bucket's name, or nil if it can.
    static func problem(_ name: String) -> String? {
        let bytes = Array(name.utf8)
        guard (3...63).contains(bytes.count) else { return "Bucket name must be between 3 and 63 characters long" }
        let allowed = bytes.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 || $0 == 46 }
        guard allowed else { return "Bucket name can only contain lowercase letters, numbers, hyphens, and periods" }
        let alphanumeric = { (byte: UInt8) in (byte >= 97 && byte <= 122) || (byte >= 48 && byte <= 57) }
        guard alphanumeric(bytes.first!), alphanumeric(bytes.last!) else {
            return "Bucket name must begin and end with a letter or number"
        }
        guard !name.contains(".."), !name.contains(".-"), !name.contains("-.") else {
            return "Bucket name can't have adjacent periods or a period next to a hyphen"
        }
        let parts = name.split(separator: ".")
        if parts.count == 4, parts.allSatisfy({ UInt8($0) != nil }) { return "Bucket name must not be formatted as an IP address" }
        for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] where name.hasPrefix(prefix) {
            return "Bucket name must not start with \(prefix)"
        }
        for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] where name.hasSuffix(suffix) {
            return "Bucket name must not end with \(suffix)"
        }
        if reserved.contains(name) { return "Bucket name \(name) is reserved by the API's paths" }
        return nil
    }
}

/// Keys and local paths in URLs: base64, URL-safe or standard alphabet,
/// padded or not; decoded to UTF-8 text with no NUL, at most `maxBytes`.
///
/// nginx merges `//` in the path the router sees, which is harmless here:
/// the standard alphabet gives `//` only for twelve 1-bits in a row, which
/// always take in a byte 0xFC-0xFF, and no UTF-8 text has one.
enum S4Key {
    static func decode(_ encoded: String, maxBytes: Int = S4Store.maxKeyBytes, what: String = "key") throws -> String {
        // The standard alphabet's two letters, as URL-safe ones.
        let urlSafe = encoded.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        guard let data = Base64URL.decode(urlSafe) else { throw invalid(what, "is not valid base64") }
        guard let decoded = String(validating: data, as: UTF8.self) else { throw invalid(what, "is not valid UTF-8") }
        guard !decoded.utf8.contains(0) else { throw invalid(what, "contains a NUL character") }
        guard decoded.utf8.count <= maxBytes else { throw invalid(what, "is longer than \(maxBytes) bytes") }
        return decoded
    }

    private static func invalid(_ what: String, _ problem: String) -> HTTPErrorResponse {
        HTTPErrorResponse(.badRequest, "The \(what) \(problem)", code: what == "path" ? "InvalidPath" : "InvalidKey")
    }
}
