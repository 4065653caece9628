import COpenSSL

/// Password hashing with scrypt. Hashes are self-describing strings,
/// `scrypt$N$r$p$<salt hex>$<key hex>`, so parameters can be raised later
/// without invalidating stored passwords.
public struct Scrypt: Sendable {
    /// OWASP's recommendation: N=2^17, r=8, p=1 (128 MiB per hash).
    public static let recommended = Scrypt(costLog2: 17, blockSize: 8, parallelism: 1)

    public let costLog2: Int
    public let blockSize: Int
    public let parallelism: Int

    public init(costLog2: Int, blockSize: Int = 8, parallelism: Int = 1) {
        self.costLog2 = costLog2
        self.blockSize = blockSize
        self.parallelism = parallelism
    }

    public func hash(password: String) throws -> String {
        let salt = try SecureRandom.bytes(16)
        let key = try Self.derive(password: password, salt: salt, costLog2: costLog2,
                                  blockSize: blockSize, parallelism: parallelism)
        return "scrypt$\(1 << costLog2)$\(blockSize)$\(parallelism)$\(Hex.encode(salt))$\(Hex.encode(key))"
    }

    /// True when `password` matches `encoded`. A malformed hash string throws
    /// rather than answering false, so a damaged row is noticed.
    public static func verify(password: String, encoded: String) throws -> Bool {
        let fields = encoded.split(separator: "$", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 6, fields[0] == "scrypt",
              let cost = Int(fields[1]), cost > 1, cost & (cost - 1) == 0,
              let blockSize = Int(fields[2]), blockSize > 0,
              let parallelism = Int(fields[3]), parallelism > 0,
              let salt = Hex.decode(fields[4]), let expected = Hex.decode(fields[5]), !expected.isEmpty
        else { throw CryptoError(.malformedHash, detail: "not an scrypt hash string") }
        let key = try derive(password: password, salt: salt, costLog2: cost.trailingZeroBitCount,
                             blockSize: blockSize, parallelism: parallelism, keyLength: expected.count)
        return constantTimeEquals(key, expected)
    }

    static func derive(password: String, salt: [UInt8], costLog2: Int, blockSize: Int,
                       parallelism: Int, keyLength: Int = 32) throws -> [UInt8] {
        var key = [UInt8](repeating: 0, count: keyLength)
        // A NULL password makes EVP_PBE_scrypt only check parameters and derive
        // nothing, so an empty password still gets a real (zero-length) buffer.
        let passwordLength = password.utf8.count
        let passwordBytes = passwordLength == 0 ? [UInt8(0)] : Array(password.utf8)
        // maxmem must be explicit: OpenSSL's default (0 → 32 MiB) rejects OWASP's N=2^17, r=8.
        let needed = UInt64(128) * UInt64(blockSize) * (UInt64(1) << UInt64(costLog2) + UInt64(parallelism) + 2)
        let result = passwordBytes.withUnsafeBufferPointer { pass in
            salt.withUnsafeBufferPointer { saltBytes in
                EVP_PBE_scrypt(
                    UnsafeRawPointer(pass.baseAddress!).assumingMemoryBound(to: CChar.self), passwordLength,
                    saltBytes.baseAddress, saltBytes.count,
                    UInt64(1) << UInt64(costLog2), UInt64(blockSize), UInt64(parallelism),
                    needed + 1 << 20, &key, keyLength)
            }
        }
        guard result == 1 else { throw CryptoError(.keyDerivation) }
        return key
    }
}
