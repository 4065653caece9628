import COpenSSL

/// An incremental digest in one of the algorithms clients name for checksums
/// (tus `Upload-Checksum`): SHA-1, MD5, SHA-256. For the upload's own hash use
/// ``SHA256Hasher``; this exists for checking what a client says it sent.
///
/// Not thread-safe: one digest belongs to one request.
public final class MessageDigest {
    public enum Algorithm: String, CaseIterable, Sendable {
        case sha1, md5, sha256
    }

    private let context: OpaquePointer

    public init(_ algorithm: Algorithm) throws {
        guard let context = EVP_MD_CTX_new() else { throw CryptoError(.digest) }
        let type = switch algorithm {
        case .sha1: EVP_sha1()
        case .md5: EVP_md5()
        case .sha256: EVP_sha256()
        }
        guard EVP_DigestInit_ex(context, type, nil) == 1 else {
            EVP_MD_CTX_free(context)
            throw CryptoError(.digest)
        }
        self.context = context
    }

    private init(context: OpaquePointer) {
        self.context = context
    }

    deinit { EVP_MD_CTX_free(context) }

    /// A second digest that has seen the same bytes; each goes on alone.
    public func copy() throws -> MessageDigest {
        guard let copied = EVP_MD_CTX_new() else { throw CryptoError(.digest) }
        guard EVP_MD_CTX_copy_ex(copied, context) == 1 else {
            EVP_MD_CTX_free(copied)
            throw CryptoError(.digest)
        }
        return MessageDigest(context: copied)
    }

    public func update(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        guard EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) == 1 else { throw CryptoError(.digest) }
    }

    /// The digest. It can't be updated afterwards.
    public func finalize() throws -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard EVP_DigestFinal_ex(context, &digest, &length) == 1 else { throw CryptoError(.digest) }
        return Array(digest.prefix(Int(length)))
    }
}
