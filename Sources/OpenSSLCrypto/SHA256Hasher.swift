import COpenSSL

/// Incremental SHA-256 over bytes as they arrive, so an upload is hashed while
/// it streams to disk and never needs a second pass.
///
/// Not thread-safe: one hasher belongs to one request.
public final class SHA256Hasher {
    private let context: OpaquePointer

    public init() throws {
        guard let context = EVP_MD_CTX_new() else { throw CryptoError(.digest) }
        guard EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else {
            EVP_MD_CTX_free(context)
            throw CryptoError(.digest)
        }
        self.context = context
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        guard EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) == 1 else {
            throw CryptoError(.digest)
        }
    }

    public func update<Bytes: ContiguousBytes>(_ bytes: Bytes) throws {
        try bytes.withUnsafeBytes { try update($0) }
    }

    /// The 32-byte digest. The hasher can't be updated afterwards.
    public func finalize() throws -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard EVP_DigestFinal_ex(context, &digest, &length) == 1 else { throw CryptoError(.digest) }
        return Array(digest.prefix(Int(length)))
    }

    /// SHA-256 of a whole buffer, as lowercase hex.
    public static func hexDigest<Bytes: ContiguousBytes>(of bytes: Bytes) throws -> String {
        let hasher = try SHA256Hasher()
        try hasher.update(bytes)
        return Hex.encode(try hasher.finalize())
    }
}

/// `ContiguousBytes` without importing Foundation into the crypto module.
public protocol ContiguousBytes {
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}
extension Array: ContiguousBytes where Element == UInt8 {}
extension ArraySlice: ContiguousBytes where Element == UInt8 {}
extension String.UTF8View: ContiguousBytes {
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Array(self).withUnsafeBytes(body)
    }
}
