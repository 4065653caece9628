import COpenSSL

/// Unpredictable bytes from OpenSSL's CSPRNG, for ids, secrets, salts and tokens.
public enum SecureRandom {
    public static func bytes(_ count: Int) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        guard RAND_bytes(&buffer, Int32(count)) == 1 else { throw CryptoError(.randomBytes) }
        return buffer
    }

    /// `byteCount` random bytes as lowercase hex (twice as many characters).
    public static func hex(byteCount: Int) throws -> String {
        Hex.encode(try bytes(byteCount))
    }
}

/// Compares two byte strings in time that depends only on their length,
/// so a secret can't be guessed byte by byte from response times.
public func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    if lhs.isEmpty { return true }
    return CRYPTO_memcmp(lhs, rhs, lhs.count) == 0
}
