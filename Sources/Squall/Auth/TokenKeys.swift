import Foundation
import JWTKit
import SquallCore

/// The keys tokens are verified with, as an immutable snapshot: built off the request path
/// (``load(_:jwks:)``), swapped whole on a reload, and read without a lock or an actor on every
/// handshake and request.
///
/// Contracts: a token names its key by `kid`, or — without one — is tried against the keys
/// that have no `kid` and whose algorithm is the header's `alg`. The header's `alg` must be
/// the key's own: an RSA public key never verifies an HS256 token (the key-confusion attack),
/// and `alg: none` matches no key. An unknown `kid` is refused (never the first key in its
/// place, which is what jwt-kit's `JWTKeyCollection` would do).
///
/// jwt-kit's `JWTKeyCollection` is an actor whose `verify` is `async`; Squall uses it only to
/// build the algorithms (`getKey(for:)`), and verifies itself, synchronously, in the order
/// jwt-kit does: header, key, signature, then claims.
public struct TokenKeys: Sendable {
    struct Key: Sendable {
        let kid: String?
        let algorithm: any JWTAlgorithm
    }

    let keys: [Key]
    private let byKid: [String: [any JWTAlgorithm]]

    init(_ keys: [Key]) {
        self.keys = keys
        var byKid: [String: [any JWTAlgorithm]] = [:]
        for key in keys {
            if let kid = key.kid { byKid[kid, default: []].append(key.algorithm) }
        }
        self.byKid = byKid
    }

    /// No key: every token is refused.
    public static let none = TokenKeys([])

    /// Whether any key is configured.
    public var isEmpty: Bool { keys.isEmpty }

    /// Key ids, for logs.
    var kids: Set<String> { Set(byKid.keys) }

    /// Verifies `token`'s signature and time claims and returns its claims.
    func verify(_ token: String, now: Date, auth: AuthConfiguration, maxInfo: RawJSON.Limits) throws(TokenError) -> TokenClaims {
        guard !keys.isEmpty else { throw .noKeys }
        let bytes = Array(token.utf8)
        let dot = UInt8(ascii: ".")
        guard bytes.count <= 16384, let first = bytes.firstIndex(of: dot), let second = bytes[(first + 1)...].firstIndex(of: dot),
            !bytes[(second + 1)...].contains(dot)
        else { throw .malformed("a token is three base64url parts joined by dots, at most 16 KiB") }
        guard let headerJSON = Base64URL.decode(bytes[..<first]), let header = try? JSONDecoder().decode(Header.self, from: headerJSON) else {
            throw .malformed("its header is not base64url JSON with \"alg\"")
        }
        guard let signature = Base64URL.decode(bytes[(second + 1)...]) else { throw .malformed("its signature is not base64url") }
        let signed = bytes[..<second]
        let candidates: [any JWTAlgorithm]
        if let kid = header.kid {
            guard let named = byKid[kid] else { throw .unknownKey("no key has kid \"\(kid.prefix(64))\"") }
            candidates = named
        } else {
            candidates = keys.filter { $0.kid == nil }.map(\.algorithm)
        }
        let matching = candidates.filter { $0.name == header.alg }
        guard !matching.isEmpty else { throw .unknownKey("no key here verifies alg \"\(header.alg.prefix(16))\"") }
        guard matching.contains(where: { (try? $0.verify(signature, signs: signed)) == true }) else { throw .badSignature }
        guard let payload = Base64URL.decode(bytes[(first + 1)..<second]) else { throw .malformed("its claims are not base64url") }
        let claims = try TokenClaims.decode(payload, maxInfo: maxInfo)
        let leeway = auth.leeway.inSeconds
        let seconds = now.timeIntervalSince1970
        if let exp = claims.exp, seconds >= exp + leeway { throw .expired }
        if let nbf = claims.nbf, seconds + leeway < nbf { throw .notYetValid }
        if let audience = auth.audience, !(claims.aud?.values.contains(audience) ?? false) { throw .wrongAudience }
        if let issuer = auth.issuer, claims.iss != issuer { throw .wrongIssuer }
        return claims
    }

    private struct Header: Decodable {
        let alg: String
        let kid: String?
    }
}

/// Base64url without padding (RFC 7515 §2), as JWTs write every part.
enum Base64URL {
    static func decode(_ bytes: ArraySlice<UInt8>) -> Data? {
        var text = String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        guard !text.contains("=") else { return nil }
        text += String(repeating: "=", count: (4 - text.utf8.count % 4) % 4)
        return Data(base64Encoded: text)
    }
}
