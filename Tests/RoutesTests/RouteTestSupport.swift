import Foundation
import HTTPCore
import Logging
import OpenSSLCrypto
@testable import Routes
@testable import Store

/// The whole router over a temporary store, called in-process.
final class RouteFixture: @unchecked Sendable {
    let root: String
    let store: MinihostStore
    let router: Router
    let context: ServerContext

    init(configuration: ServerConfiguration = ServerConfiguration(secureCookies: false)) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("minihost-routes-\(UUID().uuidString)").path
        store = try MinihostStore(directory: DataDirectory(root))
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        context = ServerContext(store: store, configuration: configuration, logger: logger,
                                cookieSigningKey: Array(repeating: 7, count: 32), passwordHasher: Scrypt(costLog2: 4))
        router = try context.makeRouter()
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func client(_ name: String = "app", scopes: [String] = ["upload", "download", "publish"]) throws -> String {
        "\(name).\(try store.clients.create(key: name, scopes: scopes))"
    }

    func send(_ method: String, _ path: String, query: String = "", headers: [(String, String)] = [],
              body: [UInt8] = []) -> Response {
        router.respond(to: Request(method: method, path: path, queryString: query, headers: HTTPHeaders(headers),
                                   body: BufferedRequestBody(body)))
    }

    func upload(_ credential: String, _ bytes: [UInt8], fileName: String = "a.bin") -> Response {
        let boundary = "testBoundary"
        let body = Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(fileName)\"\r\nContent-Type: text/plain\r\n\r\n".utf8)
            + bytes + Array("\r\n--\(boundary)--\r\n".utf8)
        return send("POST", "/api/minihost/upload", headers: [
            ("Authorization", "Bearer \(credential)"), ("Content-Type", "multipart/form-data; boundary=\(boundary)"),
            ("Content-Length", String(body.count)),
        ], body: body)
    }

    func postJSON(_ path: String, _ object: Any, credential: String? = nil, cookie: String? = nil) -> Response {
        var headers = [("Content-Type", "application/json")]
        if let credential { headers.append(("Authorization", "Bearer \(credential)")) }
        if let cookie { headers.append(("Cookie", cookie)) }
        return send("POST", path, headers: headers, body: Array(try! JSONSerialization.data(withJSONObject: object)))
    }
}

extension Response {
    var json: [String: Any] {
        guard case .bytes(let bytes) = body,
              let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { return [:] }
        return object
    }

    var servedFile: ServedFile? {
        if case .file(let file) = body { return file }
        return nil
    }
}
