import Foundation
import HTTPCore
import MinihostTesting
import Testing
@testable import Routes
@testable import Store

/// The route table's rules, on small tables of their own.
@Suite struct RouteTableTests {
    func router(_ build: (inout RouteTable) -> Void) throws -> Router {
        let fixture = try RouteFixture()
        var table = RouteTable()
        build(&table)
        return Router(table: try table.validated(), server: fixture.context, cors: CORSPolicy(), logger: fixture.context.logger)
    }

    static func answer(_ text: String) -> RouteHandler {
        { route in PlainTextResponse.make(text + " " + route.parameters.values.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value)" }.joined(separator: ",")) }
    }

    func get(_ router: Router, _ path: String, method: String = "GET") -> Response {
        router.respond(to: Request(method: method, path: path))
    }

    @Test func literalsBeatParametersWhichBeatCatchAllsWithBacktracking() throws {
        let router = try router { table in
            table.group(.plainText) { group in
                group.add("GET", "/a/b/d", Self.answer("literal"))
                group.add("GET", "/a/:x/c", Self.answer("parameter"))
                group.add("GET", "/a/*rest", Self.answer("catch-all"))
            }
        }
        #expect(get(router, "/a/b/d").text == "literal \n")
        // The literal branch fails at "c": the parameter branch takes it.
        #expect(get(router, "/a/b/c").text == "parameter x=b\n")
        #expect(get(router, "/a/k/e/f").text == "catch-all rest=k/e/f\n")
        #expect(get(router, "/a/k/").text == "catch-all rest=k/\n", "a key may end in a slash")
        #expect(get(router, "/a/").status == .notFound && get(router, "/a").status == .notFound)
    }

    @Test func routesNoRuleTellsApartAreRefusedNamingBoth() {
        var table = RouteTable()
        table.group(.json) { group in
            group.add("GET", "/x/:id", Self.answer("one"))
            group.add("POST", "/x/:id", Self.answer("other method"))
            group.add("GET", "/x/:name", Self.answer("two"))
        }
        #expect { try table.validated() } throws: { error in
            (error as? RouteConflict)?.description == "routes GET /x/:id and GET /x/:name could answer the same request"
        }
        // The real table has no such pair.
        #expect(throws: Never.self) { try RouteTable.standard(ServerConfiguration()) }
    }

    @Test func oneMethodAndPathMayServeAFormAndARawBodyPickedByContentType() throws {
        let router = try router { table in
            table.group(.json) { group in
                group.add("POST", "/up", body: .multipart(limit: 10, streamed: true, tooLarge: "big"), Self.answer("form"))
                group.add("POST", "/up", body: .raw(limit: 10, streamed: true, tooLarge: "big"), Self.answer("raw"))
            }
        }
        func post(_ contentType: String?) -> String? {
            var headers = HTTPHeaders()
            if let contentType { headers.set("Content-Type", contentType) }
            return router.respond(to: Request(method: "POST", path: "/up", headers: headers)).text
        }
        #expect(post("multipart/form-data; boundary=x") == "form \n")
        #expect(post(" Multipart/Form-Data;boundary=x") == "form \n", "as nginx's case-blind regex decides")
        #expect(post("application/octet-stream") == "raw \n")
        #expect(post(nil) == "raw \n")
        #expect(post("multipart/mixed; boundary=x") == "raw \n")
        // Two routes of the same variant are still a conflict.
        var table = RouteTable()
        table.group(.json) { group in
            group.add("POST", "/up", body: .raw(limit: 10, streamed: true, tooLarge: "big"), Self.answer("one"))
            group.add("POST", "/up", body: .json(), Self.answer("two"))
        }
        #expect(throws: RouteConflict.self) { try table.validated() }
    }

    @Test func aGroupMayAnswerItsOwnOptionsAndHead() throws {
        let router = try router { table in
            table.group(Dialect(name: "tus", headers: HTTPHeaders([("Tus-Resumable", "1.0.0")]),
                                renderError: Dialect.plainText.renderError)) { group in
                group.add("OPTIONS", "/files", Self.answer("own options"))
                group.add("HEAD", "/files/:id", Self.answer("own head"))
                group.add("GET", "/files/:id", Self.answer("get"))
            }
            table.group(.json) { group in group.add("GET", "/other", Self.answer("other")) }
        }
        #expect(get(router, "/files", method: "OPTIONS").text == "own options \n")
        #expect(get(router, "/files/7", method: "HEAD").text == "own head id=7\n")
        // The dialect's headers go on every answer, its errors included.
        #expect(get(router, "/files/7").headers["Tus-Resumable"] == "1.0.0")
        let refused = get(router, "/files/7", method: "PATCH")
        #expect(refused.status == .methodNotAllowed && refused.headers["Tus-Resumable"] == "1.0.0")
        #expect(refused.headers["Allow"] == "GET, HEAD, OPTIONS")
        // Elsewhere HEAD is GET and OPTIONS the CORS preflight.
        #expect(get(router, "/other", method: "HEAD").text == "other \n")
        #expect(get(router, "/other", method: "OPTIONS").status == .noContent)
    }

    @Test func aHandlerThatNeverChecksCredentialsFromItsBodyIsRefused() throws {
        let router = try router { table in
            table.group(.json) { group in
                group.add("POST", "/forgot", auth: .accountPassword(missing: HTTPErrorResponse(.badRequest, "missing")),
                          body: .multipart(limit: 100, streamed: false, tooLarge: "too large")) { _ in
                    PlainTextResponse.make("answered without checking")
                }
            }
        }
        let response = router.respond(to: Request(method: "POST", path: "/forgot"))
        #expect(response.status == .internalServerError && response.json["error"] as? String == "Internal server error")
    }

    @Test func headerCredentialsAreCheckedBeforeTheBodyIsRead() throws {
        let fixture = try RouteFixture()
        // Bad JSON and no credential: the credential decides.
        let response = fixture.send("POST", "/api/minihost/upload_follow_up", headers: [("Content-Type", "application/json")],
                                    body: Array("{not json".utf8))
        #expect(response.status == .unauthorized)
    }
}

@Suite struct NginxPlanTests {
    @Test func everyRouteGetsItsOwnLocationWithItsLimits() throws {
        let plan = try NginxPlan(table: RouteTable.standard(ServerConfiguration(maxUploadBytes: 10 << 20)))
        let upload = try #require(plan.locations.first { $0.pattern.text == "/api/minihost/upload" })
        #expect(upload.matcher == "= /api/minihost/upload" && upload.streamed && upload.maxBody == (10 << 20) + (192 << 10))
        #expect(upload.zones.map(\.zone) == ["upload"] && upload.connections == 16)
        let links = try #require(plan.locations.first { $0.pattern.text == "/:id" })
        #expect(links.matcher == #"~ "^/[A-Za-z0-9_-]{16}(?:\.[A-Za-z0-9]{1,16})?$""# && links.zones.isEmpty)
        // More specific regexes come first, as the router prefers them.
        let order = plan.locations.map(\.pattern.text)
        #expect(try #require(order.firstIndex(of: "/s/:id")) < order.firstIndex(of: "/:id")!)
        // nginx's own refusals in the route's dialect.
        let chunk = try #require(plan.locations.first { $0.pattern.text == "/api/uploadChunkPlain" })
        let page = try #require(plan.errorPages.first { $0.name == plan.errorTargets[chunk.id]!.first { $0.status == 413 }!.page })
        #expect(page.body == "ERR Chunk too large (max 100 MB)\\n" && page.contentType.hasPrefix("text/plain"))
    }

    @Test func aPathSplitByBodyKeysItsLimitsAndRefusalsByTheBody() throws {
        let plan = try NginxPlan(table: RouteTable.standard(ServerConfiguration()))
        let upload = try #require(plan.locations.first { $0.pattern.text == "/api/upload" })
        #expect(upload.splitsOnBody && upload.key == "\(upload.id)-$minihost_body_variant")
        // Each variant counts against its own route's zone only.
        #expect(plan.limitKeys(zone: "uploader_upload").contains("~^\(upload.id)-multipart:"))
        #expect(!plan.limitKeys(zone: "uploader_upload").contains { $0.hasPrefix("~^\(upload.id)-other") })
        #expect(plan.limitKeys(zone: "upload").contains("~^\(upload.id)-other:"))
        // nginx's 413 answers in the dialect of the route the body would reach.
        let target = try #require(plan.errorTargets[upload.id]?.first { $0.status == 413 }?.page)
        let choice = try #require(plan.errorPageChoices.first { "$" + $0.variable == target })
        let pages = Dictionary(uniqueKeysWithValues: choice.pages.map { ($0.variant, $0.page) })
        let uploader = try #require(plan.errorPages.first { $0.name == pages[.multipart] })
        let skysend = try #require(plan.errorPages.first { $0.name == pages[.other] })
        #expect(uploader.body.contains(#"\"status\":\"error\""#) && skysend.body.hasPrefix(#"{\"error\":"#))
        // Other locations keep one key and fixed pages.
        let chunk = try #require(plan.locations.first { $0.pattern.text == "/api/uploadChunkPlain" })
        #expect(!chunk.splitsOnBody && chunk.key == chunk.id && !plan.errorTargets[chunk.id]!.contains { $0.page.hasPrefix("$") })
    }

    @Test func parametersAndCatchAllsGetLocationsInTheRoutersOrder() throws {
        var table = RouteTable()
        table.group(.json) { group in
            group.add("GET", "/y/*rest", RouteTableTests.answer("rest"))
            group.add("GET", "/y/:a/b", RouteTableTests.answer("a"))
            group.add("GET", "/y/c/b", RouteTableTests.answer("literal"))
        }
        let plan = try NginxPlan(table: try table.validated())
        #expect(plan.locations.map(\.pattern.text) == ["/y/c/b", "/y/:a/b", "/y/*rest"])
        #expect(plan.locations.map(\.matcher) == ["= /y/c/b", #"~ "^/y/[^/]+/b$""#, #"~ "^/y/.+$""#])
    }

    @Test func publicFileLocationsComeFirstWhereNoPathCouldMatchAnEarlierOne() throws {
        let plan = try NginxPlan(table: RouteTable.standard(ServerConfiguration()))
        let regexes = plan.locations.filter { !$0.pattern.isLiteral }
        let publicCount = regexes.filter { $0.publicRoute != nil }.count
        #expect(publicCount >= 4)
        #expect(regexes.prefix(publicCount).allSatisfy { $0.publicRoute != nil })

        let hex = ParameterConstraint.characters("0123456789abcdef", count: 4...4, regexClass: "0-9a-f", example: "00ff")
        let file = PublicFile(tree: .cache, cacheControl: "public")
        var clashing = RouteTable()
        clashing.group(.json, limit: .none) { group in
            group.add("GET", "/:id/z", constraints: ["id": hex], publicFile: file, RouteTableTests.answer("public"))
            group.add("GET", "/beef/:name", RouteTableTests.answer("other"))
        }
        // "/beef/z" is both's: the public one must not take it first.
        #expect { try NginxPlan(table: try clashing.validated()) } throws: { "\($0)".contains("may match the paths of /beef/:name") }
    }

    @Test func patternsOverlapUnlessASegmentTellsThemApart() {
        let hex = ParameterConstraint.characters("0123456789abcdef", count: 4...4, regexClass: "0-9a-f", example: "00ff")
        func pattern(_ text: String) -> PathPattern { PathPattern(text, constraints: ["id": hex]) }
        #expect(!pattern("/a/:id").mayOverlap(pattern("/b/:x")))
        #expect(!pattern("/a/:id").mayOverlap(pattern("/a/zzzz")))  // not hex
        #expect(pattern("/a/:id").mayOverlap(pattern("/a/beef")))
        #expect(pattern("/a/:id").mayOverlap(pattern("/:x/:y")))
        #expect(!pattern("/a/:id").mayOverlap(pattern("/a/:x/c")))
        #expect(pattern("/a/:id").mayOverlap(pattern("/a/*rest")))
        #expect(pattern("/a/:id/c/d").mayOverlap(pattern("/a/*rest")))
        #expect(!pattern("/a").mayOverlap(pattern("/a/*rest")))
        #expect(!pattern("/b/:id").mayOverlap(pattern("/a/*rest")))
    }

    @Test func aZoneWithTwoRatesIsRefused() {
        var table = RouteTable()
        table.group(.json) { group in
            group.add("GET", "/a", RouteTableTests.answer("a"))
            group.add("GET", "/b", limit: RateLimit(zone: "api", rate: "1r/s", burst: 1), RouteTableTests.answer("b"))
        }
        #expect { try NginxPlan(table: table) } throws: { "\($0)".contains("zone api has two rates") }
    }
}

@Suite struct RawBodyReceiverTests {
    @Test func theBodyLandsInAFinishedBlob() throws {
        let fixture = try TemporaryStore()
        let bytes = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let request = Request(method: "PUT", path: "/", headers: HTTPHeaders([("Content-Length", String(bytes.count))]),
                              body: BufferedRequestBody(bytes, chunkLimit: 4093))
        let blob = try RawBodyReceiver(maxBytes: 1 << 20).receive(request, into: fixture.store,
                                                                 tooLarge: HTTPErrorResponse(.payloadTooLarge, "too large"))
        #expect(blob.size == Int64(bytes.count))
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: blob.temporaryPath))) == bytes)
        blob.discard()
    }

    @Test func tooLargeOrShortBodiesLeaveNothing() throws {
        let fixture = try TemporaryStore()
        let receiver = RawBodyReceiver(maxBytes: 1000)
        let declaredTooLarge = Request(method: "PUT", path: "/", headers: HTTPHeaders([("Content-Length", "1001")]))
        #expect(throws: HTTPErrorResponse.self) {
            try receiver.receive(declaredTooLarge, into: fixture.store, tooLarge: HTTPErrorResponse(.payloadTooLarge, "too large"))
        }
        let undeclared = Request(method: "PUT", path: "/", body: BufferedRequestBody(Array(repeating: 1, count: 1500)))
        #expect(throws: HTTPErrorResponse.self) {
            try receiver.receive(undeclared, into: fixture.store, tooLarge: HTTPErrorResponse(.payloadTooLarge, "too large"))
        }
        let short = Request(method: "PUT", path: "/", headers: HTTPHeaders([("Content-Length", "900")]),
                            body: BufferedRequestBody(Array(repeating: 1, count: 500)))
        #expect(throws: RequestBodyError.self) {
            try receiver.receive(short, into: fixture.store, tooLarge: HTTPErrorResponse(.payloadTooLarge, "too large"))
        }
        #expect(fixture.temporaryFiles().isEmpty)
    }
}
