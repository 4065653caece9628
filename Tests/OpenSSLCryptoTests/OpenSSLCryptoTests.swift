import OpenSSLCrypto
import Testing

@Suite struct OpenSSLCryptoTests {
    @Test func sha256MatchesKnownVectors() throws {
        #expect(try SHA256Hasher.hexDigest(of: Array("".utf8)) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(try SHA256Hasher.hexDigest(of: Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func sha256IsTheSameWhenFedInPieces() throws {
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let whole = try SHA256Hasher.hexDigest(of: bytes)
        let hasher = try SHA256Hasher()
        var offset = 0
        for size in [1, 7, 4096, 65536, 100_000] where offset < bytes.count {
            let end = min(bytes.count, offset + size)
            try hasher.update(Array(bytes[offset..<end]))
            offset = end
        }
        #expect(Hex.encode(try hasher.finalize()) == whole)
    }

    @Test func aCopiedHasherGoesOnAloneFromTheSameState() throws {
        let hasher = try SHA256Hasher()
        try hasher.update(Array("ab".utf8))
        let copy = try hasher.copy()
        try copy.update(Array("c".utf8))
        try hasher.update(Array("x".utf8))
        #expect(Hex.encode(try copy.finalize()) == (try SHA256Hasher.hexDigest(of: Array("abc".utf8))))
        #expect(Hex.encode(try hasher.finalize()) == (try SHA256Hasher.hexDigest(of: Array("abx".utf8))))
    }

    @Test func hmacMatchesRFC4231TestCase2() throws {
        let mac = try HMACSHA256.authenticate(Array("what do ya want for nothing?".utf8), key: Array("Jefe".utf8))
        #expect(Hex.encode(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func scryptVerifiesTheRightPasswordOnly() throws {
        let hasher = Scrypt(costLog2: 4)
        let encoded = try hasher.hash(password: "correct horse")
        #expect(encoded.hasPrefix("scrypt$16$8$1$"))
        #expect(try Scrypt.verify(password: "correct horse", encoded: encoded))
        #expect(try !Scrypt.verify(password: "correct horsf", encoded: encoded))
        #expect(try hasher.hash(password: "correct horse") != encoded, "each hash has its own salt")
    }

    @Test func scryptDerivesARealKeyForAnEmptyPassword() throws {
        let encoded = try Scrypt(costLog2: 4).hash(password: "")
        #expect(try Scrypt.verify(password: "", encoded: encoded))
        #expect(try !Scrypt.verify(password: "x", encoded: encoded))
    }

    @Test func scryptMatchesRFC7914Vector() throws {
        // RFC 7914 §12: P="password", S="NaCl", N=1024, r=8, p=16, dkLen=64.
        let encoded = "scrypt$1024$8$16$\(Hex.encode(Array("NaCl".utf8)))$"
            + "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"
        #expect(try Scrypt.verify(password: "password", encoded: encoded))
    }

    @Test func scryptAcceptsOWASPParameters() throws {
        // Fails with OpenSSL's default maxmem (32 MiB): proves maxmem is passed.
        let encoded = try Scrypt.recommended.hash(password: "pw")
        #expect(encoded.hasPrefix("scrypt$131072$8$1$"))
    }

    @Test func malformedHashesThrowInsteadOfAnsweringFalse() {
        for bad in ["", "scrypt$", "bcrypt$16$8$1$aa$bb", "scrypt$15$8$1$aa$bb", "scrypt$16$8$1$zz$bb"] {
            #expect(throws: CryptoError.self) { try Scrypt.verify(password: "x", encoded: bad) }
        }
    }

    @Test func hexRoundTripsAndRejectsJunk() {
        let bytes: [UInt8] = [0, 1, 0xab, 0xff]
        #expect(Hex.encode(bytes) == "0001abff")
        #expect(Hex.decode("0001ABff") == bytes)
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("zz") == nil)
    }

    @Test func constantTimeEqualsComparesContentAndLength() {
        #expect(constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!constantTimeEquals([1, 2], [1, 2, 3]))
    }

    @Test func randomBytesDiffer() throws {
        #expect(try SecureRandom.hex(byteCount: 16) != SecureRandom.hex(byteCount: 16))
        #expect(try SecureRandom.hex(byteCount: 16).count == 32)
    }
}
