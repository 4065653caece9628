import Foundation
import HTTPCore
import Store
import Testing
@testable import Routes

@Suite struct S4Tests {
    @Test func keysDecodeFromEitherAlphabetPaddedOrNot() throws {
        let key = "models/llama-2-7b/config.json"
        let standard = Data(key.utf8).base64EncodedString()
        let urlSafe = standard.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        for encoded in [standard, urlSafe, String(urlSafe.drop { _ in false }.prefix { $0 != "=" })] {
            #expect(try S4Key.decode(encoded) == key)
        }
        #expect(try S4Key.decode("bW9kZWxzL2xsYW1hLTItN2IvY29uZmlnLmpzb24") == key)
    }

    @Test func keysThatAreNotTextOrTooLongAreRefused() {
        let cases = ["", "a", "%%", "YQ=a", Data([0xff, 0xfe]).base64EncodedString(), Data("a\u{0}b".utf8).base64EncodedString(),
                     Data(String(repeating: "k", count: 1025).utf8).base64EncodedString()]
        for encoded in cases {
            #expect(throws: HTTPErrorResponse.self, "\(encoded)") { try S4Key.decode(encoded) }
        }
        #expect((try? S4Key.decode(Data(String(repeating: "k", count: 1024).utf8).base64EncodedString())) != nil)
    }

    @Test func bucketNamesFollowS3sRules() {
        for good in ["abc", "my-bucket.v2", "0bucket9", String(repeating: "a", count: 63)] {
            #expect(S4BucketName.problem(good) == nil, "\(good)")
        }
        for bad in ["ab", String(repeating: "a", count: 64), "Abc", "a_b", "-ab", "ab-", "a..b", "a.-b", "10.0.0.1",
                    "xn--abc", "sthree-x", "abc-s3alias", "upload", "view", "app:x"] {
            #expect(S4BucketName.problem(bad) != nil, "\(bad)")
        }
    }

    @Test func localLocationsParseAndSkipWhatNginxCantTake() {
        var warnings: [String] = []
        let parsed = S4Configuration.parseLocations("a=/tmp, b = /srv/data/ ,bad name=/x,c=relative,a=/again,d=/x;y",
                                                    warnings: &warnings)
        #expect(parsed.map(\.id) == ["a", "b"])
        #expect(parsed.map(\.path) == ["/tmp", "/srv/data"])
        #expect(warnings.count == 5)
    }

    @Test func authIsOnUnlessExplicitlyOff() {
        #expect(ServerConfiguration.fromEnvironment([:]).0.s4.authEnabled)
        #expect(ServerConfiguration.fromEnvironment(["MINIHOST_S4_AUTH": "no"]).0.s4.authEnabled)
        #expect(!ServerConfiguration.fromEnvironment(["MINIHOST_S4_AUTH": "off"]).0.s4.authEnabled)
    }

    @Test func listingJSONParsesBackWithHostileKeysAndMatchesTheTimestampFormat() throws {
        let keys = ["plain", "quote\"back\\slash", "ctl\u{01}\n\t\r", "ünïcode \u{2028} 🎉", "</script>"]
        let dates = [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 1_795_000_000.123),
                     Date(timeIntervalSince1970: -1.5)]
        var listing = S4Listing()
        listing.objects = keys.enumerated().map { index, key in
            S4Object(key: key, size: Int64(index), etag: "abc", lastModified: dates[index % dates.count], uploadId: "u",
                     metadata: nil)
        }
        listing.prefixes = ["p/", "q\"/"]
        listing.nextToken = "o:\(keys[1])"
        guard case .bytes(let bytes) = S4Routes.listingAnswer(listing).body else {
            Issue.record("not a byte body")
            return
        }
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        let objects = try #require(object["objects"] as? [[String: Any]])
        #expect(objects.map { $0["Key"] as? String } == keys)
        #expect(objects.map { $0["LastModified"] as? String } == keys.indices.map { ISO8601Timestamp.format(dates[$0 % 3]) })
        #expect(dates.map(ISO8601Timestamp.format) == ["1970-01-01T00:00:00.000Z", "2026-11-18T11:06:40.123Z",
                                                       "1969-12-31T23:59:58.500Z"])
        #expect(objects[2]["ETag"] as? String == "\"abc\"" && objects[3]["Size"] as? Int == 3)
        #expect((object["prefixes"] as? [[String: String]])?.map { $0["Prefix"] } == ["p/", "q\"/"])
        #expect(object["isTruncated"] as? Bool == true)
        let token = try #require(object["nextContinuationToken"] as? String)
        #expect(Base64URL.decode(token).map { String(decoding: $0, as: UTF8.self) } == listing.nextToken)
    }
}
