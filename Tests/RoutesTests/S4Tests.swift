import Foundation
import HTTPCore
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
}
