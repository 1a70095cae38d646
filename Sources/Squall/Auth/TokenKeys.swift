// SPDX-License-Identifier: Apache-2.0

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
    /// A hash of the key material they were loaded from (secrets, files, JWKS documents): two
    /// loads within this process differ exactly when the keys do.
    let fingerprint: Int
    private let byKid: [String: [any JWTAlgorithm]]
    /// The keys without a `kid`, for tokens that name none.
    private let unnamed: [any JWTAlgorithm]

    init(_ keys: [Key], fingerprint: Int = 0) {
        self.keys = keys
        self.fingerprint = fingerprint
        var byKid: [String: [any JWTAlgorithm]] = [:]
        for key in keys {
            if let kid = key.kid { byKid[kid, default: []].append(key.algorithm) }
        }
        self.byKid = byKid
        self.unnamed = keys.filter { $0.kid == nil }.map(\.algorithm)
    }

    /// No key: every token is refused.
    public static let none = TokenKeys([])

    /// Whether any key is configured.
    public var isEmpty: Bool { keys.isEmpty }

    /// Verifies `token`'s signature and time claims and returns its claims.
    func verify(_ token: String, now: Date, auth: AuthConfiguration, maxInfo: RawJSON.Limits) throws(TokenError) -> TokenClaims {
        guard !keys.isEmpty else { throw .noKeys }
        let bytes = Array(token.utf8)
        let dot = UInt8(ascii: ".")
        guard bytes.count <= 16384, let first = bytes.firstIndex(of: dot), let second = bytes[(first + 1)...].firstIndex(of: dot),
            !bytes[(second + 1)...].contains(dot)
        else { throw .malformed("a token is three base64url parts joined by dots, at most 16 KiB") }
        guard let headerJSON = Base64URL.decode(bytes[..<first]) else { throw .malformed("its header is not base64url") }
        let header = try TokenClaims.header(headerJSON)
        guard let signature = Base64URL.decode(bytes[(second + 1)...]) else { throw .malformed("its signature is not base64url") }
        let signed = bytes[..<second]
        let candidates: [any JWTAlgorithm]
        if let kid = header.kid {
            guard let named = byKid[kid] else { throw .unknownKey("no key has kid \"\(kid.prefix(64))\"") }
            candidates = named
        } else {
            candidates = unnamed
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
        if let audience = auth.audience, !(claims.aud?.contains(audience) ?? false) { throw .wrongAudience }
        if let issuer = auth.issuer, claims.iss != issuer { throw .wrongIssuer }
        return claims
    }

}

/// Base64url without padding (RFC 7515 §2), as JWTs write every part: decoded by hand over the
/// bytes (Foundation's decoder wants a padded, standard-alphabet `String` first).
enum Base64URL {
    static func decode(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        guard text.count % 4 != 1 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for character in text {
            let value: UInt8
            switch character {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = character - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = character - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = character - UInt8(ascii: "0") + 52
            case UInt8(ascii: "-"): value = 62
            case UInt8(ascii: "_"): value = 63
            default: return nil
            }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                bytes.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        // The bits left over must be zero, or the text is not the canonical encoding of any bytes.
        guard accumulator & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return bytes
    }
}
