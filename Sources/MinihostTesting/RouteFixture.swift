import Foundation
import HTTPCore
import Logging
import OpenSSLCrypto
import Routes
import Store

/// The whole router over a temporary store, called in-process: what every
/// dialect's route tests start from.
public final class RouteFixture: @unchecked Sendable {
    public let root: String
    public let store: MinihostStore
    public let router: Router
    public let context: ServerContext

    /// Cheap scrypt (N=2^4), quiet logs, cookies without `Secure`.
    public init(configuration: ServerConfiguration = ServerConfiguration(secureCookies: false)) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("minihost-routes-\(UUID().uuidString)").path
        store = try MinihostStore(directory: DataDirectory(root), configuration: configuration.storeConfiguration)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        context = ServerContext(store: store, configuration: configuration, logger: logger,
                                cookieSigningKey: Array(repeating: 7, count: 32), passwordHasher: Scrypt(costLog2: 4))
        router = try context.makeRouter()
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    /// A new API client's credential, `name.secret`.
    public func client(_ name: String = "app", scopes: [String] = ["upload", "download", "publish"]) throws -> String {
        "\(name).\(try store.clients.create(key: name, scopes: scopes))"
    }

    public func send(_ method: String, _ path: String, query: String = "", headers: [(String, String)] = [],
                     body: [UInt8] = []) -> Response {
        router.respond(to: Request(method: method, path: path, queryString: query, headers: HTTPHeaders(headers),
                                   body: BufferedRequestBody(body)))
    }

    /// A minihost-dialect upload of `bytes` as `fileName` (type text/plain).
    public func upload(_ credential: String, _ bytes: [UInt8], fileName: String = "a.bin") -> Response {
        let body = MultipartBody(boundary: "testBoundary")
            .file("file", fileName: fileName, contentType: "text/plain", bytes)
        return send("POST", "/api/minihost/upload", headers: [
            ("Authorization", "Bearer \(credential)"), ("Content-Type", body.contentType),
            ("Content-Length", String(body.bytes.count)),
        ], body: body.bytes)
    }

    public func postJSON(_ path: String, _ object: Any, credential: String? = nil, cookie: String? = nil) -> Response {
        var headers = [("Content-Type", "application/json")]
        if let credential { headers.append(("Authorization", "Bearer \(credential)")) }
        if let cookie { headers.append(("Cookie", cookie)) }
        return send("POST", path, headers: headers, body: Array(try! JSONSerialization.data(withJSONObject: object)))
    }

    public func postForm(_ path: String, _ fields: [String: String]) -> Response {
        let body = fields.map { "\(FormURLEncoded.encode($0.key))=\(FormURLEncoded.encode($0.value))" }.joined(separator: "&")
        return send("POST", path, headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array(body.utf8))
    }
}

/// A `multipart/form-data` body, built part by part.
public struct MultipartBody {
    public let boundary: String
    private var parts: [UInt8] = []

    public init(boundary: String = "b") {
        self.boundary = boundary
    }

    public var contentType: String { "multipart/form-data; boundary=\(boundary)" }

    /// The parts and the closing boundary.
    public var bytes: [UInt8] { parts + Array("--\(boundary)--\r\n".utf8) }

    public func field(_ name: String, _ value: String) -> MultipartBody {
        var copy = self
        copy.parts += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8)
        return copy
    }

    public func file(_ name: String, fileName: String, contentType: String = "application/octet-stream",
                     _ content: [UInt8]) -> MultipartBody {
        var copy = self
        copy.parts += Array(("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"; filename=\"\(fileName)\"\r\n"
                             + "Content-Type: \(contentType)\r\n\r\n").utf8) + content + Array("\r\n".utf8)
        return copy
    }
}

extension Response {
    /// The body as a JSON object (empty when it isn't one).
    public var json: [String: Any] {
        guard case .bytes(let bytes) = body,
              let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { return [:] }
        return object
    }

    /// The body as text.
    public var text: String {
        guard case .bytes(let bytes) = body else { return "" }
        return String(decoding: bytes, as: UTF8.self)
    }

    public var servedFile: ServedFile? {
        if case .file(let file) = body { return file }
        return nil
    }
}
