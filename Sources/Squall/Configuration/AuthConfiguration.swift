// SPDX-License-Identifier: Apache-2.0

import Foundation

/// Who a connection is, as its token says: whether tokens are required, and the keys that
/// verify them (``TokenKeys`` is what the server builds from this).
///
/// Contracts: without a key no token can be verified, so `required` needs one. A token signed
/// with a key not listed here is refused, whatever its header says; `alg: none` never verifies.
public struct AuthConfiguration: Sendable, Equatable {
    /// Whether a connection needs a valid token.
    public enum Mode: String, Sendable, CaseIterable {
        /// Every connection and request needs a valid connection token: without one, HTTP 401
        /// `unauthorized` (close 4001 when it comes in a `/ws` message).
        case required
        /// Anonymous connections are allowed and namespaces decide what they may do; a token,
        /// when given, must be valid.
        case optional
    }

    /// A key that verifies tokens.
    public enum Key: Sendable, Equatable {
        /// A shared secret for HS256, HS384 or HS512 (the token's header says which); at least
        /// 32 bytes.
        case secret(String)
        /// A file holding such a secret (its text, without a final newline).
        case secretFile(String)
        /// A PEM public key file (RSA for RS256, an EC P-256 key for ES256, Ed25519 for
        /// EdDSA), with the `kid` tokens name it by, if any.
        case publicKeyFile(path: String, kid: String?)
        /// A JWKS document: a file, or an `https://` / `http://` URL fetched and cached.
        case jwks(String)
    }

    public var mode: Mode
    public var keys: [Key]
    /// When set, a token's `aud` must include it.
    public var audience: String?
    /// When set, a token's `iss` must be it.
    public var issuer: String?
    /// How often a JWKS URL is fetched again; it is also fetched when a token names a `kid` it
    /// lacks (at most once per ``jwksRefresh`` / 10). Default 1 hour.
    public var jwksRefresh: Duration
    /// Clock skew allowed on `exp` and `nbf`. Default 5 s.
    public var leeway: Duration

    /// A configuration; every argument has the default documented on its property.
    public init(
        mode: Mode = .optional,
        keys: [Key] = [],
        audience: String? = nil,
        issuer: String? = nil,
        jwksRefresh: Duration = .seconds(3600),
        leeway: Duration = .seconds(5)
    ) {
        self.mode = mode
        self.keys = keys
        self.audience = audience
        self.issuer = issuer
        self.jwksRefresh = jwksRefresh
        self.leeway = leeway
    }
}
