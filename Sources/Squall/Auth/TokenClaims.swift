// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import SquallCore

/// The claims Squall reads from a token's payload (RFC 7519 names, and Squall's own), read in
/// one pass over ``JSONScanner`` (a `JSONDecoder` per handshake cost more than the signature).
struct TokenClaims: Sendable {
    /// The user id.
    var sub: String?
    /// Expiry, seconds since 1970.
    var exp: Double?
    /// Not valid before, seconds since 1970.
    var nbf: Double?
    /// The audiences: `aud` as one string or a list (RFC 7519 §4.1.3).
    var aud: [String]?
    var iss: String?
    /// Channel patterns the connection may subscribe to and publish on.
    var subscribe: [String]?
    var publish: [String]?
    /// A subscription token's channel.
    var channel: String?
    /// Presence info, as written in the token.
    var info: RawJSON?

    /// Longest user id (`sub`), in bytes.
    static let maxUserBytes = 256

    /// Deepest a payload may nest: `info`'s limit, in an object.
    static func maxDepth(_ maxInfo: RawJSON.Limits) -> Int { maxInfo.maxDepth + 1 }

    /// The claims of a payload's JSON; `info` at most `maxInfo`. A claim of the wrong type
    /// makes the token malformed; claims Squall does not read are ignored.
    static func decode(_ json: [UInt8], maxInfo: RawJSON.Limits) throws(TokenError) -> TokenClaims {
        try json.withUnsafeBytes { raw in Result { () throws(TokenError) in try claims(raw, maxInfo: maxInfo) } }.get()
    }

    private static func claims(_ raw: UnsafeRawBufferPointer, maxInfo: RawJSON.Limits) throws(TokenError) -> TokenClaims {
        guard let members = try? JSONScanner.members(raw, maxDepth: maxDepth(maxInfo)) else {
            throw .malformed("its claims are not a JSON object")
        }
        var claims = TokenClaims()
        for member in members where member.kind != .null {
            let value = UnsafeRawBufferPointer(rebasing: raw[member.value])
            switch member.name {
            case "sub":
                let sub = try string(value, member)
                // A user id travels in presence replies, events and notifications between nodes
                // (PostgreSQL's hold 8,000 bytes): an id, not a payload.
                guard sub.utf8.count <= maxUserBytes else { throw .malformed("\"sub\" is longer than \(maxUserBytes) bytes") }
                claims.sub = sub
            case "iss": claims.iss = try string(value, member)
            case "channel": claims.channel = try string(value, member)
            case "exp": claims.exp = try number(value, member)
            case "nbf": claims.nbf = try number(value, member)
            case "aud": claims.aud = member.kind == .string ? [try string(value, member)] : try strings(value, member)
            case "subscribe": claims.subscribe = try strings(value, member)
            case "publish": claims.publish = try strings(value, member)
            case "info":
                guard let info = try? RawJSON(validating: ByteBuffer(bytes: value), limits: maxInfo) else {
                    throw .malformed("its info is over \(maxInfo.maxBytes) bytes or \(maxInfo.maxDepth) levels deep")
                }
                claims.info = info
            default: continue
            }
        }
        return claims
    }

    /// The `alg` and `kid` of a token's header.
    static func header(_ json: [UInt8]) throws(TokenError) -> (alg: String, kid: String?) {
        try json.withUnsafeBytes { raw in Result { () throws(TokenError) in try header(raw) } }.get()
    }

    private static func header(_ raw: UnsafeRawBufferPointer) throws(TokenError) -> (alg: String, kid: String?) {
        guard let members = try? JSONScanner.members(raw, maxDepth: 2) else { throw .malformed("its header is not a JSON object") }
        var alg: String?
        var kid: String?
        for member in members {
            let value = UnsafeRawBufferPointer(rebasing: raw[member.value])
            switch member.name {
            case "alg": alg = try string(value, member)
            case "kid": kid = try string(value, member)
            default: continue
            }
        }
        guard let alg else { throw .malformed("its header has no \"alg\"") }
        return (alg, kid)
    }

    private static func string(_ value: UnsafeRawBufferPointer, _ member: JSONScanner.Member) throws(TokenError) -> String {
        guard member.kind == .string, let text = try? JSONScanner.unescape(value) else { throw .malformed("\"\(member.name)\" is not a string") }
        return text
    }

    private static func number(_ value: UnsafeRawBufferPointer, _ member: JSONScanner.Member) throws(TokenError) -> Double {
        guard member.kind == .number, let number = Double(String(decoding: value, as: UTF8.self)), number.isFinite else {
            throw .malformed("\"\(member.name)\" is not a number")
        }
        return number
    }

    private static func strings(_ value: UnsafeRawBufferPointer, _ member: JSONScanner.Member) throws(TokenError) -> [String] {
        guard member.kind == .array, let elements = try? JSONScanner.elements(value, maxDepth: 1) else {
            throw .malformed("\"\(member.name)\" is not a list of strings")
        }
        var texts: [String] = []
        for element in elements {
            guard element.kind == .string, let text = try? JSONScanner.unescape(UnsafeRawBufferPointer(rebasing: value[element.value])) else {
                throw .malformed("\"\(member.name)\" is not a list of strings")
            }
            texts.append(text)
        }
        return texts
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
