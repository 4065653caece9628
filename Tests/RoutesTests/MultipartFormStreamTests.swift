import HTTPCore
import MinihostTesting
import Testing
@testable import Routes

/// Collects parts in memory for assertions.
final class CollectingHandler: MultipartFormHandler {
    struct Part { var headers: MultipartPartHeaders; var body: [UInt8] = [] }
    var parts: [Part] = []
    var open = false

    func beginPart(_ headers: MultipartPartHeaders) throws { parts.append(Part(headers: headers)); open = true }
    func partBody(_ bytes: UnsafeRawBufferPointer) throws { parts[parts.count - 1].body.append(contentsOf: bytes) }
    func endPart() throws { open = false }
}

func multipartBody(boundary: String, parts: [(headers: String, body: [UInt8])], closing: Bool = true) -> [UInt8] {
    var out: [UInt8] = []
    for part in parts {
        out += Array("--\(boundary)\r\n\(part.headers)\r\n\r\n".utf8) + part.body + Array("\r\n".utf8)
    }
    if closing { out += Array("--\(boundary)--\r\n".utf8) }
    return out
}

@Suite struct MultipartFormStreamTests {
    let boundary = "----minihostBoundary7MA4YWxk"

    @Test func parsesFieldsAndFilesWhateverTheReadSize() throws {
        // Data that contains CRs, LFs and a near-boundary sequence.
        let tricky = Array("line\r\n--\(boundary.dropLast())X\r\n\r\r\n-".utf8) + (0..<3000).map { UInt8(truncatingIfNeeded: $0) }
        let body = multipartBody(boundary: boundary, parts: [
            ("Content-Disposition: form-data; name=\"note\"", Array("hi".utf8)),
            ("Content-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\nContent-Type: application/x-test", tricky),
        ])
        for chunk in [1, 2, 3, 7, 64, 1000, body.count] {
            let handler = CollectingHandler()
            try MultipartFormStream.parse(BufferedRequestBody(body, chunkLimit: chunk), boundary: boundary,
                                          handler: handler, bufferSize: 64 * 1024)
            #expect(handler.parts.count == 2, "chunk \(chunk)")
            #expect(handler.parts[0].headers.name == "note")
            #expect(handler.parts[0].body == Array("hi".utf8))
            #expect(handler.parts[1].headers.fileName == "a.bin")
            #expect(handler.parts[1].headers["content-type"] == "application/x-test")
            #expect(handler.parts[1].body == tricky, "chunk \(chunk)")
        }
    }

    @Test func aBodyWithoutTheClosingBoundaryIsRefused() {
        let body = multipartBody(boundary: boundary, parts: [
            ("Content-Disposition: form-data; name=\"file\"; filename=\"a\"", Array(repeating: 65, count: 5000)),
        ], closing: false)
        for cut in [body.count, body.count - 2, 100, 10] {
            #expect(throws: MultipartError.self, "cut at \(cut)") {
                try MultipartFormStream.parse(BufferedRequestBody(Array(body.prefix(cut))), boundary: boundary,
                                              handler: CollectingHandler())
            }
        }
    }

    @Test func garbageAndEmptyBodiesAreRefused() {
        for body in [[], Array("not multipart at all".utf8), Array("--\(boundary)\r\nbroken header line\r\n\r\nx".utf8)] {
            #expect(throws: MultipartError.self) {
                try MultipartFormStream.parse(BufferedRequestBody(body), boundary: boundary, handler: CollectingHandler())
            }
        }
    }

    @Test func hugeHeaderBlocksAreRefused() {
        let header = "Content-Disposition: form-data; name=\"file\"; filename=\"" + String(repeating: "a", count: 40_000) + "\""
        let body = multipartBody(boundary: boundary, parts: [(header, [1])])
        #expect(throws: MultipartError.self) {
            try MultipartFormStream.parse(BufferedRequestBody(body), boundary: boundary, handler: CollectingHandler())
        }
    }

    @Test func invalidUTF8InAFileNameKeepsThePartName() throws {
        let headers = Array("Content-Disposition: form-data; name=\"file\"; filename=\"".utf8) + [0xff, 0xfe, 0x41] + Array("\"".utf8)
        var body = Array("--\(boundary)\r\n".utf8) + headers + Array("\r\n\r\ndata\r\n--\(boundary)--\r\n".utf8)
        let handler = CollectingHandler()
        try MultipartFormStream.parse(BufferedRequestBody(body), boundary: boundary, handler: handler)
        #expect(handler.parts.first?.headers.name == "file")
        #expect(handler.parts.first?.headers.fileName == "\u{FFFD}\u{FFFD}A")
        body.removeAll()
    }

    @Test func extendedFileNamesAreDecoded() {
        var headers = MultipartPartHeaders()
        headers.fields = [("Content-Disposition", "form-data; name=\"file\"; filename=\"fallback.txt\"; filename*=UTF-8''%E2%82%AC%20rates.txt")]
        #expect(headers.fileName == "€ rates.txt")
    }

    @Test func boundaryComesOnlyFromMultipartFormData() {
        #expect(MultipartFormStream.boundary(fromContentType: "multipart/form-data; boundary=abc") == "abc")
        #expect(MultipartFormStream.boundary(fromContentType: "Multipart/Form-Data; charset=utf-8; boundary=\"a b\"") == "a b")
        #expect(MultipartFormStream.boundary(fromContentType: "application/json") == nil)
        #expect(MultipartFormStream.boundary(fromContentType: "multipart/form-data") == nil)
        #expect(MultipartFormStream.boundary(fromContentType: nil) == nil)
    }
}
