// SPDX-License-Identifier: Apache-2.0

import Foundation
import SquallCore

/// Who a connection is, as a verified connection token says: its user, what presence shows
/// of it, which channels its token grants, and when the token expires.
///
/// A class, immutable: a connection holds a reference (8 bytes), not ~100 bytes inline, so that
/// an anonymous idle connection pays nothing for it.
public final class ClientIdentity: Sendable {
    /// The token's `sub`: the user id, shown in presence as `user`. Empty for a token without
    /// one.
    public let user: String
    /// The token's `info`, shown in presence as the member's info.
    public let info: RawJSON?
    /// Channels the token lets this connection subscribe to, beyond its namespace's rule.
    public let subscribe: [ChannelPattern]
    /// Channels the token lets this connection publish to, beyond its namespace's rule.
    public let publish: [ChannelPattern]
    /// The token's `exp`; `nil` for a token that does not expire.
    public let expires: Date?
    /// When a live connection holding the token is closed (4002): `exp` and the leeway that
    /// verification allows, so that a token accepted is never closed at once.
    public let validUntil: Date?

    public init(
        user: String, info: RawJSON? = nil, subscribe: [ChannelPattern] = [], publish: [ChannelPattern] = [], expires: Date? = nil,
        leeway: Duration = .zero
    ) {
        self.user = user
        self.info = info
        self.subscribe = subscribe
        self.publish = publish
        self.expires = expires
        self.validUntil = expires?.addingTimeInterval(leeway.inSeconds)
    }

    /// The identity a verified connection token describes.
    convenience init(_ claims: TokenClaims, leeway: Duration) {
        let user = claims.sub ?? ""
        self.init(
            user: user,
            info: claims.info,
            subscribe: (claims.subscribe ?? []).compactMap { ChannelPattern($0, user: user) },
            publish: (claims.publish ?? []).compactMap { ChannelPattern($0, user: user) },
            // Held below the year 5000, so that any later arithmetic on it stays in range.
            expires: claims.exp.map { Date(timeIntervalSince1970: min($0, 95_000_000_000)) },
            leeway: leeway
        )
    }

    /// The same identity, valid until `until` (`nil`: for good) — a renewal by the refresh hook.
    func renewed(until: Date?) -> ClientIdentity {
        ClientIdentity(user: user, info: info, subscribe: subscribe, publish: publish, expires: until)
    }

    /// The user as presence lists it: `nil` for a token without `sub`.
    public var presenceUser: String? { user.isEmpty ? nil : user }
}
