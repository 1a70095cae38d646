// SPDX-License-Identifier: Apache-2.0

import SquallCore

/// Everything a Squall server can be told, with the defaults `squall serve` uses.
public struct SquallConfiguration: Sendable {
    /// Address to bind. Default `127.0.0.1`: reachable from this machine only.
    public var host: String
    /// Port to bind; 0 picks a free one. Default 8000, as in the seed's chat server.
    public var port: Int
    /// Largest message a client may send, in bytes. A larger one closes that connection with
    /// 1009 (message too big). Default 1 MiB.
    public var maxMessageSize: Int
    /// How much may wait for one slow connection before it is closed with 1008.
    /// Default 1,024 messages or 16 MiB, whichever comes first.
    public var outbox: Outbox.Limits
    /// permessage-deflate (RFC 7692) for WebSocket clients that offer it, as browsers do;
    /// `nil` turns it off. Default on, for messages of 1 KiB or more.
    public var deflate: DeflateOptions?
    /// How often the server pings an idle client; a client that has not answered by the next
    /// ping is closed, so dead peers do not linger. `nil` turns pings off. Default 30 s.
    public var pingInterval: Duration?
    /// How long a closing connection may take to answer the close handshake (and to drain
    /// what was queued for it) before the server drops it. It also bounds how long a graceful
    /// shutdown waits for clients. Default 3 s.
    public var closeTimeout: Duration
    /// How long each channel's log keeps messages for history and resume.
    /// Default 1,000 messages, 1 hour or 16 MiB, whichever is reached first.
    public var retention: Retention
    /// Where channel logs live: in memory only, forgotten on restart; in a store on this node
    /// (``LogStore``, e.g. SQLite); or in one several nodes share (``SharedLogStore``, e.g.
    /// PostgreSQL), this server then being one node of them. The server closes it when it
    /// stops. Default ``LogStorage/memory``.
    public var storage: LogStorage
    /// How many channels' logs are read from the store at once, and how long a request waits
    /// for one before it is told `store_unavailable`. Defaults as ``OpeningLimits`` documents.
    public var opening: OpeningLimits
    /// Longest a long poll may wait for a message; a client asking for more gets this, and
    /// `wait` defaults to it. Keep it below the idle timeout of any proxy in front (often
    /// 30–60 s), so that polls are answered and never turned into 504s. Default 25 s.
    public var longPollWait: Duration
    /// How often an idle Server-Sent Events stream gets a comment line, so that proxies do not
    /// close it and a vanished client is noticed. Default 15 s.
    public var sseHeartbeat: Duration
    /// Most bytes of messages (as JSON envelopes) or presence members that one history, poll or
    /// presence reply carries; a reply always carries at least one, and says where to continue.
    /// Default 1 MiB.
    public var maxReplyBytes: Int
    /// How big and deep a `/ws` client's presence `info` may be. Default 4 KiB, 8 levels.
    public var maxInfo: RawJSON.Limits
    /// How big and deep a `/ws` request's `ref` may be. Default 256 bytes, 4 levels.
    public var maxRef: RawJSON.Limits
    /// How long a new connection may take to send its first request head, complete; also how
    /// long a WebSocket upgrade may take. Default 10 s.
    public var handshakeTimeout: Duration
    /// How long an HTTP connection may sit between requests before it is closed. Default 60 s.
    public var idleTimeout: Duration
    /// How long a request body may take to arrive, complete. Default 30 s.
    public var bodyTimeout: Duration
    /// Which web pages may open WebSockets, publish and read replies from a browser: the
    /// server's own origin, and those listed. Default the server's own origin only.
    public var origins: OriginPolicy
    /// How many connections the server holds, in all and from one address, and each one's
    /// kernel send buffer. Defaults as ``ConnectionLimits`` documents.
    public var limits: ConnectionLimits
    /// How wide one client's address is for limits and rates (an IPv6 /64 by default), and
    /// which peers are proxies whose `Forwarded` / `X-Forwarded-For` headers say whom a request
    /// is from. Defaults as ``ClientAddresses`` documents: no trusted proxy.
    public var clientAddresses: ClientAddresses
    /// How fast one client may publish; `nil` lets it publish as fast as it can. Default
    /// ``RateLimit/standard``: 1,000 a second with a burst of 10,000.
    public var publishRate: RateLimit?
    /// How fast one client may subscribe and unsubscribe (each join and leave is news to every
    /// presence watcher of the channel); `nil` for no limit. Default
    /// ``RateLimit/standardSubscriptions``: 100 a second with a burst of 1,000.
    public var subscribeRate: RateLimit?
    /// How long an HTTP response may wait on a client that does not read (the socket's buffer
    /// full) before the connection is closed. Default 30 s.
    public var writeTimeout: Duration
    /// The certificate and key to serve TLS with (`wss://`, `https://`, HTTP/2 by ALPN);
    /// `nil` serves plain TCP. Default `nil`.
    public var tls: TLSFiles?
    /// Whether clients need connection tokens, and the keys that verify them. Default: tokens
    /// optional, no key (so every client is anonymous).
    public var auth: AuthConfiguration
    /// The keys that open the server API (`/api/…`). Default none: the API is off.
    public var apiKeys: APIKeys
    /// The backend's hooks on connect, refresh, subscribe and publish. Default none.
    public var hooks: HookConfiguration
    /// Lifecycle webhooks. Default none.
    public var webhooks: WebhookConfiguration?
    /// Whether responses name the server and its version (`Server: Squall/0.9.0`). Default on.
    public var serverHeader: Bool
    /// The options of channels outside every namespace. Default: anyone may do anything.
    public var defaultNamespace: NamespaceOptions
    /// Channel families by name (`chat` for `chat:lobby`), each with its options. Default none.
    public var namespaces: [String: NamespaceOptions]

    /// A configuration; every argument has the default documented on its property.
    public init(
        host: String = "127.0.0.1",
        port: Int = 8000,
        maxMessageSize: Int = 1 << 20,
        outbox: Outbox.Limits = Outbox.Limits(),
        deflate: DeflateOptions? = DeflateOptions(),
        pingInterval: Duration? = .seconds(30),
        closeTimeout: Duration = .seconds(3),
        retention: Retention = Retention(),
        storage: LogStorage = .memory,
        opening: OpeningLimits = OpeningLimits(),
        longPollWait: Duration = .seconds(25),
        sseHeartbeat: Duration = .seconds(15),
        maxReplyBytes: Int = 1 << 20,
        maxInfo: RawJSON.Limits = RawJSON.Limits(maxBytes: 4096, maxDepth: 8),
        maxRef: RawJSON.Limits = RawJSON.Limits(maxBytes: 256, maxDepth: 4),
        handshakeTimeout: Duration = .seconds(10),
        idleTimeout: Duration = .seconds(60),
        bodyTimeout: Duration = .seconds(30),
        writeTimeout: Duration = .seconds(30),
        origins: OriginPolicy = OriginPolicy(),
        limits: ConnectionLimits = ConnectionLimits(),
        clientAddresses: ClientAddresses = ClientAddresses(),
        publishRate: RateLimit? = .standard,
        subscribeRate: RateLimit? = .standardSubscriptions,
        tls: TLSFiles? = nil,
        auth: AuthConfiguration = AuthConfiguration(),
        apiKeys: APIKeys = APIKeys(),
        hooks: HookConfiguration = HookConfiguration(),
        webhooks: WebhookConfiguration? = nil,
        serverHeader: Bool = true,
        defaultNamespace: NamespaceOptions = NamespaceOptions(),
        namespaces: [String: NamespaceOptions] = [:]
    ) {
        self.host = host
        self.port = port
        self.maxMessageSize = maxMessageSize
        self.outbox = outbox
        self.deflate = deflate
        self.pingInterval = pingInterval
        self.closeTimeout = closeTimeout
        self.retention = retention
        self.storage = storage
        self.opening = opening
        self.longPollWait = longPollWait
        self.sseHeartbeat = sseHeartbeat
        self.maxReplyBytes = maxReplyBytes
        self.maxInfo = maxInfo
        self.maxRef = maxRef
        self.handshakeTimeout = handshakeTimeout
        self.idleTimeout = idleTimeout
        self.bodyTimeout = bodyTimeout
        self.writeTimeout = writeTimeout
        self.origins = origins
        self.limits = limits
        self.clientAddresses = clientAddresses
        self.publishRate = publishRate
        self.subscribeRate = subscribeRate
        self.tls = tls
        self.auth = auth
        self.apiKeys = apiKeys
        self.serverHeader = serverHeader
        self.hooks = hooks
        self.webhooks = webhooks
        self.defaultNamespace = defaultNamespace
        self.namespaces = namespaces
    }
}

/// How Squall compresses WebSocket messages for clients that negotiated permessage-deflate.
///
/// Each message is compressed once, on its own (no context takeover), and the same bytes go to
/// every subscriber that negotiated it; a connection keeps no compression state, so compression
/// costs no memory per connection. See ``SquallConfiguration/deflate``.
public struct DeflateOptions: Sendable {
    /// Smallest message, in bytes, that is sent compressed; smaller ones gain little and cost
    /// CPU, and any message that does not shrink is sent as it is. Default 1 KiB, as Node's `ws`.
    public var minimumSize: Int

    /// Options; the argument has the default documented on its property.
    public init(minimumSize: Int = 1024) {
        self.minimumSize = minimumSize
    }
}
