import HTTPCore
import Testing

@Suite struct HTTPHeadersTests {
    @Test func valuesFromInputCanNeverStartANewHeader() {
        var headers = HTTPHeaders()
        headers.add("X-Name\r\nSet-Cookie", "a\r\nSet-Cookie: evil=1\nLocation: x")
        #expect(headers.fields.count == 1)
        #expect(headers.fields[0].name == "X-NameSet-Cookie")
        #expect(headers.fields[0].value == "aSet-Cookie: evil=1Location: x")
        #expect(!headers.fields.contains { $0.name.contains("\r") || $0.value.contains("\n") })
    }

    @Test func lookupIgnoresASCIICaseOnlyAndSetReplacesEveryField() {
        var headers = HTTPHeaders([("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("Content-Type", "text/plain")])
        #expect(headers["SET-COOKIE"] == "a=1" && headers["content-TYPE"] == "text/plain")
        #expect(headers["Content-Typé"] == nil && headers["Content-Typ"] == nil)
        headers.set("set-COOKIE", "c=3")
        #expect(headers.fields.filter { $0.name.lowercased() == "set-cookie" }.map(\.value) == ["c=3"])
        headers.remove("content-type")
        #expect(headers["Content-Type"] == nil && headers.fields.count == 1)
    }
}

@Suite struct FormURLEncodedTests {
    @Test func decodesLikeBrowsersAndKeepsTheFirstValue() {
        #expect(FormURLEncoded.parse("a=1&b=x+y&c=%C3%A9&a=2&&=z&d") == ["a": "1", "b": "x y", "c": "é", "d": ""])
        #expect(FormURLEncoded.parse("e=%ZZ%4&f=%") == ["e": "%ZZ%4", "f": "%"])
        #expect(FormURLEncoded.decode("%FF%FE") == "\u{FFFD}\u{FFFD}")
        #expect(FormURLEncoded.parse("k=v=w") == ["k": "v=w"])
    }

    @Test func encodingRoundTrips() {
        for text in ["", "a b&c=d", "é/€?#%", "\u{0601}/x", "\0\r\n"] {
            #expect(FormURLEncoded.decode(FormURLEncoded.encode(text)) == text)
        }
        #expect(FormURLEncoded.encode("a b~") == "a%20b~")
    }

    @Test func splittingIsByBytes() {
        #expect("a\u{0601}/b".splitASCII("/").map(String.init) == ["a\u{0601}", "b"])
        #expect("/x//y/".splitASCII("/", omittingEmptySubsequences: false).map(String.init) == ["", "x", "", "y", ""])
        #expect("k=v=w".splitASCII("=", maxSplits: 1).map(String.init) == ["k", "v=w"])
        #expect("a\u{0601}.b".firstASCIIIndex(of: ".") != nil)
    }
}

@Suite struct RequestBodyTests {
    @Test func collectStopsAtItsLimitAndDrainEmpties() throws {
        let body = BufferedRequestBody(Array(repeating: 1, count: 100), chunkLimit: 7)
        #expect(throws: RequestBodyError.self) { try body.collect(upTo: 99) }
        let exact = BufferedRequestBody(Array(repeating: 2, count: 100), chunkLimit: 7)
        #expect(try exact.collect(upTo: 100).count == 100)
        let rest = BufferedRequestBody(Array(repeating: 3, count: 50))
        try rest.drain()
        #expect(try rest.collect(upTo: 10).isEmpty)
    }

    @Test func requestsNormalizeTheMethodAndReadTheirQuery() {
        let request = Request(method: "post", path: "/x", queryString: "id=a%20b&id=c",
                              headers: HTTPHeaders([("Content-Length", "12"), ("Host", "h:1")]))
        #expect(request.method == "POST" && request.query == ["id": "a b"])
        #expect(request.contentLength == 12 && request.host == "h:1" && !request.isContentOrigin && !request.isAbandoned())
    }
}
