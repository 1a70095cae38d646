// SPDX-License-Identifier: Apache-2.0

import Foundation
import JWTKit

/// Makes connection and subscription tokens with a shared secret, as an application's backend
/// would with any JWT library: for development, tests and `squall token`.
public enum TokenMinter {
    /// What a minted token says.
    public struct Claims: Sendable {
        public var sub: String?
        public var expires: Date?
        public var info: String?
        public var subscribe: [String]
        public var publish: [String]
        public var channel: String?
        public var audience: String?
        public var issuer: String?

        public init(
            sub: String? = nil, expires: Date? = nil, info: String? = nil, subscribe: [String] = [], publish: [String] = [], channel: String? = nil,
            audience: String? = nil, issuer: String? = nil
        ) {
            self.sub = sub
            self.expires = expires
            self.info = info
            self.subscribe = subscribe
            self.publish = publish
            self.channel = channel
            self.audience = audience
            self.issuer = issuer
        }
    }

    /// Why a token could not be made.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// An HS256 token signed with `secret` (at least 32 bytes, as Squall verifies).
    /// - Throws: ``Failure`` for a short secret, or an `info` that is not JSON.
    public static func hs256(_ claims: Claims, secret: String, now: Date = Date()) async throws(Failure) -> String {
        guard secret.utf8.count >= 32 else { throw Failure(description: "a secret must be at least 32 bytes (RFC 7518 §3.2)") }
        var payload = Payload(
            sub: claims.sub.map(SubjectClaim.init(value:)), exp: claims.expires.map { ExpirationClaim(value: Self.seconds($0)) },
            iat: IssuedAtClaim(value: Self.seconds(now)), aud: claims.audience.map { AudienceClaim(value: [$0]) },
            iss: claims.issuer.map(IssuerClaim.init(value:)), subscribe: claims.subscribe.isEmpty ? nil : claims.subscribe,
            publish: claims.publish.isEmpty ? nil : claims.publish, channel: claims.channel, info: nil)
        if let info = claims.info {
            guard let value = try? JSONDecoder().decode(JWTHeaderField.self, from: Data(info.utf8)) else {
                throw Failure(description: "info must be JSON, e.g. {\"name\":\"Alice\"}")
            }
            payload.info = value
        }
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        do {
            return try await keys.sign(payload)
        } catch {
            throw Failure(description: "the token could not be signed: \(error)")
        }
    }

    /// `date` in whole seconds, as most JWT libraries write a NumericDate.
    private static func seconds(_ date: Date) -> Date {
        Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))
    }

    private struct Payload: JWTPayload {
        var sub: SubjectClaim?
        var exp: ExpirationClaim?
        var iat: IssuedAtClaim
        var aud: AudienceClaim?
        var iss: IssuerClaim?
        var subscribe: [String]?
        var publish: [String]?
        var channel: String?
        var info: JWTHeaderField?

        func verify(using algorithm: some JWTAlgorithm) throws {}
    }
}
