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
    // s4 with auth off and a local location, so inputs reach its handlers
    // (keys, listings, local paths) rather than stopping at the token check.
    configuration.s4.authEnabled = false
    let local = root + "-local"
    try! FileManager.default.createDirectory(atPath: local + "/dir", withIntermediateDirectories: true)
    FileManager.default.createFile(atPath: local + "/dir/file.txt", contents: Data("x".utf8))
    // A link out of the root, to a decoy: a bug that followed it must not touch real files.
    try! FileManager.default.createDirectory(atPath: root + "-outside", withIntermediateDirectories: true)
    FileManager.default.createFile(atPath: root + "-outside/passwd", contents: Data("decoy".utf8))
    try? FileManager.default.createSymbolicLink(atPath: local + "/out", withDestinationPath: root + "-outside")
    configuration.s4.localLocations = [LocalRoot(id: "l0", path: local)]
    let context = ServerContext(store: store, configuration: configuration, logger: logger,
                                cookieSigningKey: Array(repeating: 1, count: 32), passwordHasher: Scrypt(costLog2: 4))
    _ = try? store.clients.create(key: "app", scopes: ["upload", "download", "publish"])
    try? store.s4.createBucket("bkt")
    return try! context.makeRouter()
}()

let outside = NSTemporaryDirectory() + "minihost-fuzz-router-\(getpid())-outside"

let methods = ["GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "get", ""]
let paths = ["/api/minihost/upload", "/api/minihost/download", "/minihost/cache/", "/api/minihost/admin-purge-unhandled",
             "/api/basicHTMLUpload", "/api/uploadChunkPlain", "/api/finishChunkedUploadPlain", "/s/", "/d/", "/", "",
             "/api/objects/bkt/", "/api/objects/download/bkt/", "/api/objects/upload/bkt/", "/api/objects/metadata/app:app/",
             "/api/buckets", "/api/local/files/l0/", "/api/local/download/l0/", "/api/local/l0/",
             "/api/local/upload/l0/", "/api/auth/sse-ticket"]

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
    require(FileManager.default.fileExists(atPath: outside + "/passwd"), "a request reached through the link out of the root")
    if case .file = response.body {
        require(response.headers["X-Content-Type-Options"] == "nosniff", "stored bytes without nosniff")
        require(response.headers["Content-Security-Policy"] == "sandbox", "stored bytes without the sandbox")
    }
    return 0
}
