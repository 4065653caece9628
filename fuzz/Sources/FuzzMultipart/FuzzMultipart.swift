import FuzzSupport
import HTTPCore
import Routes

/// The streaming multipart reader and the upload receiver's limits on it:
/// whatever the body, no crash, no sanitizer report, and every bound holds.
final class CountingSink: FileSink {
    var size: Int64 = 0
    func write(_ bytes: UnsafeRawBufferPointer) throws { size += Int64(bytes.count) }
    func abandon() {}
}

let maxFile: Int64 = 4096

@_cdecl("FuzzMultipart_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzz)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> Int32 {
    var input = FuzzInput(data, count)
    let chunkLimit = Int(input.byte()) + 1
    let boundary = input.string(separator: 10)
    let contentLength = input.byte() & 1 == 1
    let bytes = input.rest
    var headers = HTTPHeaders([("Content-Type", "multipart/form-data; boundary=\"\(boundary)\"")])
    if contentLength { headers.add("Content-Length", String(bytes.count)) }
    let request = Request(method: "POST", path: "/", headers: headers, body: body(bytes, chunkLimit: chunkLimit))
    var receiver = FileUploadReceiver(maxBytes: maxFile)
    receiver.maxFieldBytes = 1024
    receiver.bufferSize = 0  // the smallest window the reader takes: more reads cross a boundary
    do {
        let part = try receiver.receive(request, tooLarge: HTTPErrorResponse(.payloadTooLarge, "too large")) { _, _, fields in
            require(fields.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count } <= 1024, "fields past their budget")
            return CountingSink()
        }
        require(part.sink.size <= maxFile, "file past its limit: \(part.sink.size)")
        require(part.fields.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count } <= 1024, "fields past their budget")
        require(MediaType(part.contentType) != nil, "recorded an unparsable content type \(part.contentType)")
        require(!part.fileName.contains("/") && !part.fileName.isEmpty, "unsafe display name \(part.fileName)")
    } catch {
        // Refusals are the expected outcome for most inputs.
    }
    return 0
}
