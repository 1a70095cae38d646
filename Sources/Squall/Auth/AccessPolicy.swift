// SPDX-License-Identifier: Apache-2.0

import Foundation
import SquallCore

/// Who may connect and what each client may do on each channel: the auth mode, the keys, and
/// the namespaces — one immutable value, which ``LivePolicy`` swaps whole on a reload.
///
/// Contracts: every decision is made from the request and this value alone, without waiting,
/// on the event loop that serves the request. A refusal is an ``APIError``: 401 `unauthorized`
/// without a valid token where one is needed, 403 `permission_denied` naming the namespace and
/// the rule otherwise.
public struct AccessPolicy: Sendable {
    public let auth: AuthConfiguration
    /// Swapped alone when a JWKS URL's keys are fetched again.
    public internal(set) var keys: TokenKeys
    /// The options of channels whose name has no `:`, or whose namespace is not defined.
    public let defaultNamespace: NamespaceOptions
    /// Namespaces by name: channel `chat:lobby` is in namespace `chat`.
    public internal(set) var namespaces: [String: NamespaceOptions]
    let maxInfo: RawJSON.Limits

    public init(
        auth: AuthConfiguration = AuthConfiguration(),
        keys: TokenKeys = .none,
        defaultNamespace: NamespaceOptions = NamespaceOptions(),
        namespaces: [String: NamespaceOptions] = [:],
        maxInfo: RawJSON.Limits = RawJSON.Limits()
    ) {
        self.auth = auth
        self.keys = keys
        self.defaultNamespace = defaultNamespace
        self.namespaces = namespaces
        self.maxInfo = maxInfo
    }

    /// The namespace `channel` is in, by name (`""` for the default one), and its options.
    public func namespace(of channel: ChannelName) -> (name: String, options: NamespaceOptions) {
        // Asked several times per publish: without namespaces, nothing to look up; with them,
        // the colon is found in the UTF-8 bytes, not by walking Characters.
        guard !namespaces.isEmpty else { return ("", defaultNamespace) }
        let name = channel.description
        guard let colon = name.utf8.firstIndex(of: UInt8(ascii: ":")) else { return ("", defaultNamespace) }
        let prefix = String(name[..<colon])
        guard let options = namespaces[prefix] else { return ("", defaultNamespace) }
        return (prefix, options)
    }

    /// The identity `token` proves; `nil` for an anonymous client, which `required` refuses.
    public func identify(_ token: String?, now: Date = Date()) throws(APIError) -> ClientIdentity? {
        do {
            return try verify(token, now: now)
        } catch {
            throw APIError.unauthorized(error.description)
        }
    }

    /// As ``identify(_:now:)``, saying why a token was refused.
    func verify(_ token: String?, now: Date) throws(TokenError) -> ClientIdentity? {
        // Without a key tokens are not in use: a `token` parameter is some other thing's.
        if keys.isEmpty, auth.mode == .optional { return nil }
        guard let token, !token.isEmpty else {
            guard auth.mode == .optional else { throw .missing }
            return nil
        }
        let claims = try keys.verify(token, now: now, auth: auth, maxInfo: maxInfo)
        // The same keys sign both kinds: a token for one channel must not pass as a user's.
        guard claims.channel == nil else { throw .malformed("a subscription token (with \"channel\") is not a connection token") }
        return ClientIdentity(claims, leeway: auth.leeway)
    }

    /// Refuses a subscribe to `channel` its namespace does not allow this client. A private
    /// channel needs `subscriptionToken`: a token whose `channel` is this one and whose `sub` is
    /// the connection's user.
    /// - Returns: when the subscription token stops being valid (its `exp` and the leeway), for
    ///   a private channel whose token expires: the subscription must be renewed by then, or
    ///   its connection is closed with 4002 as for a connection token.
    @discardableResult
    public func authorizeSubscribe(
        _ channel: ChannelName, by identity: ClientIdentity?, subscriptionToken: String?, now: Date = Date()
    ) throws(APIError) -> Date? {
        let (name, options) = namespace(of: channel)
        if options.isPrivate {
            try Self.refuseNone(options.subscribe, "subscribe", name)
            guard let subscriptionToken, !subscriptionToken.isEmpty else {
                throw APIError.permissionDenied(namespace: name, rule: "private: true", "a subscription token for \(channel) is needed")
            }
            let claims: TokenClaims
            do {
                claims = try keys.verify(subscriptionToken, now: now, auth: auth, maxInfo: maxInfo)
            } catch {
                throw APIError.permissionDenied(namespace: name, rule: "private: true", "the subscription token is refused: \(error)")
            }
            guard claims.channel == channel.description, (claims.sub ?? "") == (identity?.user ?? "") else {
                throw APIError.permissionDenied(namespace: name, rule: "private: true", "the subscription token is for another channel or user")
            }
            return claims.exp.map { Date(timeIntervalSince1970: min($0, 95_000_000_000)).addingTimeInterval(auth.leeway.inSeconds) }
        }
        if identity?.subscribe.contains(where: { $0.matches(channel) }) == true, options.subscribe != .none { return nil }
        try Self.check(options.subscribe, "subscribe", name, identity: identity, subscribed: false)
        return nil
    }

    /// Refuses a publish to `channel` its namespace does not allow this client; `subscribed`
    /// says whether the same connection is subscribed to it.
    public func authorizePublish(_ channel: ChannelName, by identity: ClientIdentity?, subscribed: Bool) throws(APIError) {
        let (name, options) = namespace(of: channel)
        if identity?.publish.contains(where: { $0.matches(channel) }) == true, options.publish != .none { return }
        try Self.check(options.publish, "publish", name, identity: identity, subscribed: subscribed)
    }

    /// Refuses a history read (or a poll) of `channel` its namespace does not allow.
    public func authorizeHistory(_ channel: ChannelName, by identity: ClientIdentity?, subscribed: Bool) throws(APIError) {
        let (name, options) = namespace(of: channel)
        try Self.check(options.history, "history", name, identity: identity, subscribed: subscribed)
    }

    /// Refuses a presence read of `channel` its namespace does not allow.
    public func authorizePresence(_ channel: ChannelName, by identity: ClientIdentity?, subscribed: Bool) throws(APIError) {
        let (name, options) = namespace(of: channel)
        try Self.check(options.presenceRead, "presence-read", name, identity: identity, subscribed: subscribed)
    }

    /// Whether a subscriber of `channel` may have its join and leave events: they name the
    /// members as a presence read does, so the namespace must have presence and join-leave on,
    /// and its presence-read rule must let a subscriber read. A subscribe that asks for them
    /// where it may not is served without them.
    public func presenceEventsAllowed(_ channel: ChannelName, by identity: ClientIdentity?) -> Bool {
        let options = namespace(of: channel).options
        guard options.presence, options.joinLeave else { return false }
        do {
            try authorizePresence(channel, by: identity, subscribed: true)
            return true
        } catch {
            return false
        }
    }

    private static func refuseNone(_ access: ChannelAccess, _ rule: String, _ namespace: String) throws(APIError) {
        guard access == .none else { return }
        throw APIError.permissionDenied(namespace: namespace, rule: "\(rule): none", "only the server may do this")
    }

    private static func check(_ access: ChannelAccess, _ rule: String, _ namespace: String, identity: ClientIdentity?, subscribed: Bool) throws(APIError) {
        switch access {
        case .anyone: return
        case .authenticated where identity != nil: return
        case .subscribers where subscribed: return
        case .none: try refuseNone(access, rule, namespace)
        case .authenticated: throw APIError.permissionDenied(namespace: namespace, rule: "\(rule): authenticated", "a connection token is needed")
        case .subscribers:
            throw APIError.permissionDenied(namespace: namespace, rule: "\(rule): subscribers", "subscribe to the channel on this connection first")
        }
    }
}
