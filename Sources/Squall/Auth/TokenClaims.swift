import Foundation
import NIOCore
import SquallCore

/// The claims Squall reads from a token's payload (RFC 7519 names, and Squall's own).
struct TokenClaims: Decodable, Sendable {
    /// The user id.
    var sub: String?
    /// Expiry, seconds since 1970.
    var exp: Double?
    /// Not valid before, seconds since 1970.
    var nbf: Double?
    /// Issued at, seconds since 1970.
    var iat: Double?
    /// The audiences: one string or a list.
    var aud: Audience?
    var iss: String?
    /// Channel patterns the connection may subscribe to and publish on.
    var subscribe: [String]?
    var publish: [String]?
    /// A subscription token's channel.
    var channel: String?
    /// Presence info, as written in the token (read apart from the rest, by ``JSONScanner``).
    var info: RawJSON?

    enum CodingKeys: String, CodingKey {
        case sub, exp, nbf, iat, aud, iss, subscribe, publish, channel
    }

    /// `aud` as RFC 7519 §4.1.3 allows it: a string or an array of strings.
    struct Audience: Decodable, Sendable {
        let values: [String]

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let one = try? container.decode(String.self) {
                values = [one]
            } else {
                values = try container.decode([String].self)
            }
        }
    }

    /// The claims of a payload's JSON; `info` at most `maxInfo`.
    static func decode(_ json: Data, maxInfo: RawJSON.Limits) throws(TokenError) -> TokenClaims {
        var claims: TokenClaims
        do {
            claims = try JSONDecoder().decode(TokenClaims.self, from: json)
        } catch {
            throw .malformed("its claims are not a JSON object of the expected types")
        }
        let buffer = ByteBuffer(bytes: json)
        let members: [JSONScanner.Member]? = buffer.withUnsafeReadableBytes { raw in try? JSONScanner.members(raw, maxDepth: maxInfo.maxDepth + 1) }
        if let info = members?.last(where: { $0.name == "info" }), info.kind != .null,
            let slice = buffer.getSlice(at: info.value.lowerBound, length: info.value.count)
        {
            guard let raw = try? RawJSON(validating: slice, limits: maxInfo) else {
                throw .malformed("its info is over \(maxInfo.maxBytes) bytes or \(maxInfo.maxDepth) levels deep")
            }
            claims.info = raw
        }
        return claims
    }
}

/// Why a token was refused; the message goes to the client.
enum TokenError: Error, Sendable, CustomStringConvertible {
    case malformed(String)
    case unknownKey(String)
    case badSignature
    case expired
    case notYetValid
    case wrongAudience
    case wrongIssuer
    case noKeys
    case missing

    var description: String {
        switch self {
        case .malformed(let why): "the token is malformed: \(why)"
        case .unknownKey(let why): "the token's key is unknown: \(why)"
        case .badSignature: "the token's signature does not verify"
        case .expired: "the token has expired"
        case .notYetValid: "the token is not valid yet (nbf)"
        case .wrongAudience: "the token is not for this audience (aud)"
        case .wrongIssuer: "the token is from another issuer (iss)"
        case .noKeys: "this server has no key to verify tokens with"
        case .missing: "a connection token is required: send ?token=, Authorization: Bearer, or a connect request"
        }
    }
}
