import COpenSSL

/// A libcrypto call failed. Every wrapper in this module turns a failing
/// return code into one of these, so callers never see raw C status values.
public struct CryptoError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        public static let digest = Code(name: "digest")
        public static let hmac = Code(name: "hmac")
        public static let randomBytes = Code(name: "randomBytes")
        public static let keyDerivation = Code(name: "keyDerivation")
        public static let malformedHash = Code(name: "malformedHash")
    }

    public let code: Code
    /// OpenSSL's own error queue text, when it had any.
    public let detail: String

    init(_ code: Code, detail: String? = nil) {
        self.code = code
        self.detail = detail ?? CryptoError.drainOpenSSLErrors()
    }

    public var description: String { "crypto error (\(code)): \(detail)" }

    static func drainOpenSSLErrors() -> String {
        var messages: [String] = []
        while true {
            let error = ERR_get_error()
            if error == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(error, &buffer, buffer.count)
            messages.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return messages.isEmpty ? "no detail" : messages.joined(separator: "; ")
    }
}
