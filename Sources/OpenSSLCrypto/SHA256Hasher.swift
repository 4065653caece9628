/// Incremental SHA-256 over bytes as they arrive, so an upload is hashed while
/// it streams to disk and never needs a second pass.
///
/// Not thread-safe: one hasher belongs to one request.
public final class SHA256Hasher {
    private let digest: MessageDigest

    public init() throws {
        digest = try MessageDigest(.sha256)
    }

    private init(digest: MessageDigest) {
        self.digest = digest
    }

    /// A second hasher that has seen the same bytes; each goes on alone.
    public func copy() throws -> SHA256Hasher {
        SHA256Hasher(digest: try digest.copy())
    }

    public func update(_ bytes: UnsafeRawBufferPointer) throws {
        try digest.update(bytes)
    }

    public func update<Bytes: ContiguousBytes>(_ bytes: Bytes) throws {
        try bytes.withUnsafeBytes { try update($0) }
    }

    /// The 32-byte digest. The hasher can't be updated afterwards.
    public func finalize() throws -> [UInt8] {
        try digest.finalize()
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
