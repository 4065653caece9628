import HTTPCore
import OpenSSLCrypto
import Store

/// The operator's session cookie: `<token>.<HMAC-SHA256(token)>`. The
/// signature lets a forged or damaged cookie be refused before any database
/// look-up; the token itself is checked against its hash in the store.
public struct OperatorCookie: Sendable {
    public static let name = "minihost_admin"

    let signingKey: [UInt8]
    let secure: Bool
    let lifetime: Double

    public init(signingKey: [UInt8], secure: Bool, lifetime: Double) {
        self.signingKey = signingKey
        self.secure = secure
        self.lifetime = lifetime
    }

    func value(for token: String) throws -> String {
        token + "." + Hex.encode(try HMACSHA256.authenticate(Array(token.utf8), key: signingKey))
    }

    func setCookie(token: String) throws -> String {
        "\(Self.name)=\(try value(for: token)); Path=/; Max-Age=\(Int(lifetime)); HttpOnly; SameSite=Lax" + (secure ? "; Secure" : "")
    }

    func clearCookie() -> String {
        "\(Self.name)=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax" + (secure ? "; Secure" : "")
    }

    /// The session token in the request's cookie, if its signature is right.
    func token(in request: Request) -> String? {
        guard let value = request.cookie(Self.name), let dot = value.lastIndex(of: ".") else { return nil }
        let token = String(value[..<dot])
        guard let presented = Hex.decode(String(value[value.index(after: dot)...])),
              let expected = try? HMACSHA256.authenticate(Array(token.utf8), key: signingKey),
              constantTimeEquals(presented, expected) else { return nil }
        return token
    }
}
