// SPDX-License-Identifier: Apache-2.0

import Foundation
import JWTKit
import SquallCore
import Testing

@testable import Squall

/// Connection tokens verified against a snapshot of keys: what is accepted, and each way a
/// token is refused.
@Suite struct TokenKeysTests {
    static let secret = "0123456789abcdef0123456789abcdef"
    static let otherSecret = "fedcba9876543210fedcba9876543210"
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    struct Claims: JWTPayload {
        var sub: SubjectClaim?
        var exp: ExpirationClaim?
        var nbf: NotBeforeClaim?
        var aud: AudienceClaim?
        var iss: IssuerClaim?
        var subscribe: [String]?
        var info: [String: String]?

        func verify(using algorithm: some JWTAlgorithm) throws {}
    }

    /// A token signed with `secret` (HS256 unless `digest` says otherwise), as a backend would.
    static func token(_ claims: Claims, secret: String = secret, digest: DigestAlgorithm = .sha256, kid: String? = nil) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: digest, kid: kid.map { JWKIdentifier(string: $0) })
        return try await keys.sign(claims, kid: kid.map { JWKIdentifier(string: $0) })
    }

    static func claims(sub: String = "ada", expiresIn: TimeInterval? = 60, notBefore: TimeInterval? = nil) -> Claims {
        Claims(
            sub: SubjectClaim(value: sub), exp: expiresIn.map { ExpirationClaim(value: now.addingTimeInterval($0)) },
            nbf: notBefore.map { NotBeforeClaim(value: now.addingTimeInterval($0)) })
    }

    static func keys(_ auth: AuthConfiguration) async throws -> TokenKeys {
        try await TokenKeys.load(auth)
    }

    static func verify(_ token: String, _ keys: TokenKeys, _ auth: AuthConfiguration = AuthConfiguration(leeway: .zero)) -> Result<TokenClaims, TokenError> {
        Result { () throws(TokenError) in try keys.verify(token, now: now, auth: auth, maxInfo: RawJSON.Limits()) }
    }

    @Test func aTokenSignedWithTheSecretGivesItsClaims() async throws {
        var claims = Self.claims()
        claims.info = ["name": "Ada"]
        let keys = try await Self.keys(AuthConfiguration(keys: [.secret(Self.secret)]))
        let verified = try Self.verify(try await Self.token(claims), keys).get()
        #expect(verified.sub == "ada")
        #expect(verified.info.map { String(buffer: $0.bytes) } == #"{"name":"Ada"}"#)
    }

    @Test func aLongSecretVerifiesHS384AndHS512Too() async throws {
        let long = String(repeating: "k", count: 64)
        let keys = try await Self.keys(AuthConfiguration(keys: [.secret(long)]))
        for digest in [DigestAlgorithm.sha256, .sha384, .sha512] {
            #expect((try? Self.verify(try await Self.token(Self.claims(), secret: long, digest: digest), keys).get()) != nil)
        }
    }

    @Test func expiredAndNotYetValidTokensAreRefusedAllowingTheLeeway() async throws {
        let keys = try await Self.keys(AuthConfiguration(keys: [.secret(Self.secret)]))
        let expired = try await Self.token(Self.claims(expiresIn: -1))
        guard case .failure(.expired) = Self.verify(expired, keys) else {
            Issue.record("an expired token passed")
            return
        }
        #expect((try? Self.verify(expired, keys, AuthConfiguration(leeway: .seconds(5))).get()) != nil, "within the leeway")
        let early = try await Self.token(Self.claims(notBefore: 30))
        guard case .failure(.notYetValid) = Self.verify(early, keys) else {
            Issue.record("a token not yet valid passed")
            return
        }
    }

    @Test func aTokenSignedWithAnotherSecretIsRefused() async throws {
        let keys = try await Self.keys(AuthConfiguration(keys: [.secret(Self.secret)]))
        guard case .failure(.badSignature) = Self.verify(try await Self.token(Self.claims(), secret: Self.otherSecret), keys) else {
            Issue.record("a token of another secret passed")
            return
        }
    }

    @Test func algNoneIsRefusedWhateverTheClaims() async throws {
        let keys = try await Self.keys(AuthConfiguration(keys: [.secret(Self.secret)]))
        let signed = try await Self.token(Self.claims()).split(separator: ".")
        let none = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
        for token in ["\(none).\(signed[1]).", "\(none).\(signed[1]).\(signed[2])"] {
            guard case .failure(.unknownKey) = Self.verify(token, keys) else {
                Issue.record("alg none passed: \(token)")
                return
            }
        }
    }

    @Test func anUnknownKidIsRefusedNotVerifiedWithAnotherKey() async throws {
        let keys = try await Self.keys(AuthConfiguration(keys: [.secret(Self.secret)]))
        guard case .failure(.unknownKey) = Self.verify(try await Self.token(Self.claims(), kid: "someone-else"), keys) else {
            Issue.record("a token with an unknown kid passed")
            return
        }
    }

    @Test func twoSecretsAtOnceLetABackendRotate() async throws {
        let keys = try await Self.keys(AuthConfiguration(keys: [.secret(Self.secret), .secret(Self.otherSecret)]))
        #expect((try? Self.verify(try await Self.token(Self.claims()), keys).get()) != nil)
        #expect((try? Self.verify(try await Self.token(Self.claims(), secret: Self.otherSecret), keys).get()) != nil)
    }

    @Test func theAudienceAndIssuerAreCheckedWhenConfigured() async throws {
        let auth = AuthConfiguration(keys: [.secret(Self.secret)], audience: "chat", issuer: "https://id.example", leeway: .zero)
        let keys = try await Self.keys(auth)
        var claims = Self.claims()
        claims.aud = AudienceClaim(value: ["chat", "other"])
        claims.iss = IssuerClaim(value: "https://id.example")
        #expect((try? Self.verify(try await Self.token(claims), keys, auth).get()) != nil)
        claims.aud = AudienceClaim(value: ["other"])
        guard case .failure(.wrongAudience) = Self.verify(try await Self.token(claims), keys, auth) else {
            Issue.record("another audience passed")
            return
        }
        claims.aud = AudienceClaim(value: ["chat"])
        claims.iss = IssuerClaim(value: "https://evil.example")
        guard case .failure(.wrongIssuer) = Self.verify(try await Self.token(claims), keys, auth) else {
            Issue.record("another issuer passed")
            return
        }
    }

    @Test func garbageIsMalformedNeverATrap() async throws {
        let keys = try await Self.keys(AuthConfiguration(keys: [.secret(Self.secret)]))
        for token in ["", ".", "..", "a.b.c", "a.b.c.d", String(repeating: "a", count: 20_000), "eyJhbGciOiJIUzI1NiJ9..", "e30.e30.e30"] {
            guard case .failure = Self.verify(token, keys) else {
                Issue.record("\(token.prefix(20)) passed")
                return
            }
        }
    }

    @Test func aShortSecretOrAMissingFileCannotBeLoaded() async {
        await #expect(throws: TokenKeys.LoadError.self) { try await TokenKeys.load(AuthConfiguration(keys: [.secret("short")])) }
        await #expect(throws: TokenKeys.LoadError.self) {
            try await TokenKeys.load(AuthConfiguration(keys: [.publicKeyFile(path: "/nonexistent.pem", kid: nil)]))
        }
        await #expect(throws: TokenKeys.LoadError.self) { try await TokenKeys.load(AuthConfiguration(keys: [.jwks("/nonexistent.json")])) }
    }

    @Test func aUserIdIsAnIdNotAPayload() async throws {
        let keys = try await Self.keys(AuthConfiguration(keys: [.secret(Self.secret)]))
        #expect((try? Self.verify(try await Self.token(Self.claims(sub: String(repeating: "u", count: 256))), keys).get()) != nil)
        guard case .failure(.malformed) = Self.verify(try await Self.token(Self.claims(sub: String(repeating: "u", count: 257))), keys) else {
            Issue.record("a 257-byte sub passed")
            return
        }
    }

    @Test func aKeyFetchThatEndsAfterAReloadLeavesTheReloadsSettings() async throws {
        let before = AuthConfiguration(keys: [.secret(Self.secret)])
        let after = AuthConfiguration(mode: .required, keys: [.secret(Self.otherSecret)])
        let policy = LivePolicy(
            LivePolicy.Snapshot(origins: OriginPolicy(), publishRate: nil, subscribeRate: nil, access: AccessPolicy(auth: before), apiKeys: APIKeys()))
        // A reload lands while a refresh of the old settings' keys is on its way…
        policy.update { $0.access = AccessPolicy(auth: after) }
        try await policy.reloadKeys(before)
        // …which then must not put the old settings back.
        #expect(policy.current.access.auth == after)
    }
}
