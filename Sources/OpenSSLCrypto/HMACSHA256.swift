import COpenSSL

/// HMAC-SHA256, used to sign cookies and one-time tickets.
public enum HMACSHA256 {
    public static func authenticate(_ message: [UInt8], key: [UInt8]) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let result = key.withUnsafeBytes { keyBytes in
            message.withUnsafeBytes { messageBytes in
                HMAC(EVP_sha256(), keyBytes.baseAddress, Int32(key.count),
                     messageBytes.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count,
                     &out, &length)
            }
        }
        guard result != nil else { throw CryptoError(.hmac) }
        return Array(out.prefix(Int(length)))
    }
}
