// SPDX-License-Identifier: Apache-2.0

import SquallCore

/// How a family of channels behaves: channel `chat:lobby` takes namespace `chat`'s options, a
/// name without `:` takes the default namespace's (``SquallConfiguration/defaultNamespace``).
///
/// The seed's `type(name, bases, dict)` builds a class from a dictionary at run time; a
/// namespace is a channel family's behaviour built the same way — from the configuration
/// file's `namespaces:` section, from ``init(_:)``'s dictionary, or typed.
///
/// Contracts: permissions are decided when a client subscribes, publishes or reads, never per
/// delivery. History bounds apply to channels whose log opens after they are set; each is at
/// most the server's (``SquallConfiguration/retention``), which a store keeps.
public struct NamespaceOptions: Sendable, Equatable {
    /// Most messages a channel keeps; `nil` for the server's `retention-messages`.
    public var historySize: Int?
    /// How long a channel keeps a message; `nil` for the server's `retention-age`.
    public var historyAge: Duration?
    /// Most bytes a channel keeps; `nil` for the server's `retention-bytes`.
    public var historyBytes: Int?
    /// Whether subscribers are listed in presence. Default `true`.
    public var presence: Bool
    /// Whether presence watchers get join and leave events. Default `true`.
    public var joinLeave: Bool
    /// Who may subscribe. Default ``ChannelAccess/anyone``.
    public var subscribe: ChannelAccess
    /// Who may publish. Default ``ChannelAccess/anyone``.
    public var publish: ChannelAccess
    /// Who may read history (and poll). Default ``ChannelAccess/anyone``.
    public var history: ChannelAccess
    /// Who may read presence. Default ``ChannelAccess/anyone``.
    public var presenceRead: ChannelAccess
    /// Whether subscribing needs a subscription token for the channel (its `channel` claim),
    /// bound to the connection's user. Default `false`.
    public var isPrivate: Bool
    /// Largest message a client may publish here; `nil` for the server's `max-message-size`.
    public var maxMessageSize: Int?
    /// How fast one client (a WebSocket connection, or an HTTP client address) may publish
    /// here, on top of the server's `publish-rate`; `nil` for no limit of the namespace's own.
    public var publishRate: RateLimit?
    /// The subscribe hook of this namespace's channels. Default: the server's.
    public var subscribeHook: NamespaceHook
    /// The publish hook of this namespace's channels. Default: the server's.
    public var publishHook: NamespaceHook

    /// A namespace; every argument has the default documented on its property.
    public init(
        historySize: Int? = nil,
        historyAge: Duration? = nil,
        historyBytes: Int? = nil,
        presence: Bool = true,
        joinLeave: Bool = true,
        subscribe: ChannelAccess = .anyone,
        publish: ChannelAccess = .anyone,
        history: ChannelAccess = .anyone,
        presenceRead: ChannelAccess = .anyone,
        isPrivate: Bool = false,
        maxMessageSize: Int? = nil,
        publishRate: RateLimit? = nil,
        subscribeHook: NamespaceHook = .inherited,
        publishHook: NamespaceHook = .inherited
    ) {
        self.subscribeHook = subscribeHook
        self.publishHook = publishHook
        self.historySize = historySize
        self.historyAge = historyAge
        self.historyBytes = historyBytes
        self.presence = presence
        self.joinLeave = joinLeave
        self.subscribe = subscribe
        self.publish = publish
        self.history = history
        self.presenceRead = presenceRead
        self.isPrivate = isPrivate
        self.maxMessageSize = maxMessageSize
        self.publishRate = publishRate
    }

    /// The namespace's history bounds within the server's `retention`.
    public func retention(within retention: Retention) -> Retention {
        Retention(
            maxMessages: min(historySize ?? retention.maxMessages, retention.maxMessages),
            maxAge: min(historyAge ?? retention.maxAge, retention.maxAge),
            maxBytes: min(historyBytes ?? retention.maxBytes, retention.maxBytes),
            metaTTL: retention.metaTTL
        )
    }
}
