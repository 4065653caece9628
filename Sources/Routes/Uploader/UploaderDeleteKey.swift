import OpenSSLCrypto

/// The delete `key` of an uploader file: a UUID derived from the upload's id
/// with HMAC-SHA256 under the server's secret key, so nothing secret is
/// stored, and `get_files` can still show an owner each file's key.
enum UploaderDeleteKey {
    static func key(for uploadId: String, signingKey: [UInt8]) throws -> String {
        // The prefix keeps these MACs apart from the cookie signatures made
        // with the same key (those sign bare hex tokens).
        var bytes = Array(try HMACSHA256.authenticate(Array("minihost uploader delete key\u{0}\(uploadId)".utf8),
                                                      key: signingKey).prefix(16))
        bytes[6] = (bytes[6] & 0x0f) | 0x40  // version 4
        bytes[8] = (bytes[8] & 0x3f) | 0x80  // RFC 4122 variant
        let hex = Array(Hex.encode(bytes))
        return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(hex[$0]) }.joined(separator: "-")
    }

    /// Compared in constant time; a UUID in capitals matches too.
    static func matches(_ presented: String, uploadId: String, signingKey: [UInt8]) throws -> Bool {
        let expected = try key(for: uploadId, signingKey: signingKey)
        return constantTimeEquals(Array(presented.lowercased().utf8), Array(expected.utf8))
    }
}
