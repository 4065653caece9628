import Foundation
import Testing
@testable import Routes

@Suite struct TusMetadataTests {
    @Test func pairsDecodeAndMalformedHeadersAreRefused() throws {
        let metadata = try #require(TusMetadata("filename cmVwb3J0LnBkZg==,is_confidential, filetype YXBwbGljYXRpb24vcGRm"))
        #expect(metadata.string("filename") == "report.pdf" && metadata.string("filetype") == "application/pdf")
        #expect(metadata.values["is_confidential"] == [] && metadata.storedText == metadata.text)
        for bad in ["a %%%", "a b c", "a eA==,a eA==", "k\u{7F} eA==", String(repeating: "a", count: 5000)] {
            #expect(TusMetadata(bad) == nil, "\(bad.prefix(20))")
        }
        // tuspy sends an empty header when there is no metadata.
        let empty = try #require(TusMetadata(""))
        #expect(empty.values.isEmpty && empty.storedText == nil)
        // Values that aren't UTF-8 stay bytes.
        #expect(try #require(TusMetadata("n //8=")).string("n") == nil)
    }

    @Test func expiryDatesAreIMFFixdate() {
        #expect(HTTPDate.format(Date(timeIntervalSince1970: 1_403_712_000)) == "Wed, 25 Jun 2014 16:00:00 GMT")
        #expect(HTTPDate.format(Date(timeIntervalSince1970: 0.9)) == "Thu, 01 Jan 1970 00:00:00 GMT")
    }
}
