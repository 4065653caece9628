import FuzzSupport
import HTTPCore
@testable import Routes
import Store

/// Form and query decoding, content types, display names and
/// Content-Disposition: no crash, and what comes out is safe to use.
@_cdecl("FuzzForms_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzz)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> Int32 {
    var input = FuzzInput(data, count)
    let mode = input.byte()
    let text = String(decoding: input.rest, as: UTF8.self)

    let form = FormURLEncoded.parse(text)
    for (name, value) in form {
        require(!name.isEmpty, "empty field name")
        require(FormURLEncoded.decode(FormURLEncoded.encode(value)) == value, "encode/decode lost \(value.debugDescription)")
    }
    _ = Request(method: "GET", path: "/", queryString: text).query

    // The normalized form may outgrow the length limit (sanitize then stores octet-stream).
    if let type = MediaType(text), type.description.utf8.count <= 255 {
        require(MediaType(type.description) == type, "media type does not round-trip: \(type.description)")
        require(type.description.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7f }, "non-printable media type")
    }
    require(MediaType(MediaType.sanitize(text)) != nil, "sanitize gave an unparsable type")
    _ = StoredContent.isInlineSafe(text)

    let name = DisplayName.sanitize(text)
    require(!name.isEmpty && name.utf8.count <= DisplayName.maxBytes, "display name length \(name.utf8.count)")
    require(!name.contains("/") && !name.contains("\\"), "display name has a path separator")
    require(!name.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f }, "display name has a control character")
    let disposition = ContentDisposition.header(mode & 1 == 0 ? .inline : .attachment, fileName: name)
    require(disposition.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7f }, "Content-Disposition is not printable ASCII")

    var headers = MultipartPartHeaders()
    headers.fields = [(name: "Content-Disposition", value: text)]
    _ = headers.name
    _ = headers.fileName

    let contentType = mode & 2 == 0 ? "application/json" : "application/x-www-form-urlencoded"
    let limit = Int(mode >> 2) * 16
    let request = Request(method: "POST", path: "/", headers: HTTPHeaders([("Content-Type", contentType)]),
                          body: body(input.rest, chunkLimit: Int(mode) + 1))
    do {
        _ = try request.formFields(limit: limit)
        require(input.rest.count <= limit, "a body of \(input.rest.count) bytes passed a limit of \(limit)")
    } catch {}
    return 0
}
