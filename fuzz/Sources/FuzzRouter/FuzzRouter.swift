import Foundation
import FuzzSupport
import HTTPCore
import Logging
import OpenSSLCrypto
import Routes
import Store

/// The whole router with every dialect's routes over a real store: any
/// method, path, query, headers and small body gets an answer with a valid
/// status, headers that can't split, and no crash.
let router: Router = {
    let root = NSTemporaryDirectory() + "minihost-fuzz-router-\(getpid())"
    let store = try! MinihostStore(directory: DataDirectory(root))
    var logger = Logger(label: "fuzz")
    logger.logLevel = .critical
    var configuration = ServerConfiguration(secureCookies: false)
    configuration.credentialCacheLifetime = 0
    let context = ServerContext(store: store, configuration: configuration, logger: logger,
                                cookieSigningKey: Array(repeating: 1, count: 32), passwordHasher: Scrypt(costLog2: 4))
    _ = try? store.clients.create(key: "app", scopes: ["upload", "download", "publish"])
    return try! context.makeRouter()
}()

let methods = ["GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "get", ""]
let paths = ["/api/minihost/upload", "/api/minihost/download", "/minihost/cache/", "/api/minihost/admin-purge-unhandled",
             "/api/basicHTMLUpload", "/api/uploadChunkPlain", "/api/finishChunkedUploadPlain", "/s/", "/d/", "/", ""]

@_cdecl("FuzzRouter_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzz)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> Int32 {
    var input = FuzzInput(data, count)
    let selector = input.byte()
    let method = methods[Int(selector) % methods.count]
    let pathBase = paths[Int(input.byte()) % paths.count]
    let path = pathBase + input.string(separator: 10)
    let query = input.string(separator: 10)
    var headers = HTTPHeaders()
    for _ in 0..<Int(input.byte() % 4) {
        headers.add(input.string(separator: 58), input.string(separator: 10))
    }
    let request = Request(method: method, path: path, queryString: query, headers: headers,
                          isContentOrigin: selector & 0x80 != 0, body: body(input.rest, chunkLimit: Int(selector) + 1))
    let response = router.respond(to: request)
    require((100...599).contains(response.status.code), "status \(response.status.code)")
    for field in response.headers {
        require(!field.name.utf8.contains(where: { $0 == 10 || $0 == 13 }), "header name splits")
        require(!field.value.utf8.contains(where: { $0 == 10 || $0 == 13 }), "header value splits")
    }
    if case .file = response.body {
        require(response.headers["X-Content-Type-Options"] == "nosniff", "stored bytes without nosniff")
        require(response.headers["Content-Security-Policy"] == "sandbox", "stored bytes without the sandbox")
    }
    return 0
}
