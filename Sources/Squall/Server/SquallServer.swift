// SPDX-License-Identifier: Apache-2.0

import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import SquallCore

/// The Squall server: channels on one log served over WebSocket (`/ws` JSON protocol, plain
/// `/msg` sockets), Server-Sent Events, long and short polling; the demo page at `/`; and any
/// ``WebSocketHandler`` you mount — all on one port.
///
/// Start it with ``runService()``, which stops it gracefully on SIGINT (Ctrl-C) and SIGTERM as
/// `squall serve` does. It is also a swift-service-lifecycle `Service`: run it in your own
/// `ServiceGroup` beside other services with ``run()``.
/// On graceful shutdown every WebSocket is closed with 1001 (going away), SSE streams end with a
/// `close` event, waiting long polls are answered, and the server stops once the clients have
/// answered, or after ``SquallConfiguration/closeTimeout``.
///
/// ```swift
/// var server = SquallServer(configuration: .init(port: 8080))
/// server.mount("/echo", handler: ClosureWebSocketHandler(name: "Echo", onMessage: { connection, message in
///     connection.writeMessage(message)
/// }))
/// try await server.runService()
/// ```
public struct SquallServer: Service, CustomStringConvertible {
    /// What the server was configured with.
    public let configuration: SquallConfiguration
    /// Where the server logs: access lines, connections, and (at debug) each message.
    public let logger: Logger
    /// Every open WebSocket connection, whatever path it came in on.
    public let connections = ConnectionPool()
    /// Every channel's log, subscribers and presence: publish here to reach every transport.
    public let hub: Hub
    /// What may change while the server runs — origins, rates, tokens' keys, namespaces — as
    /// every request reads it now (``reload(_:)`` and ``namespace(_:_:)`` change it).
    public let policy: LivePolicy
    private var mounts: [WebSocketMount] = []
    private let onListening: @Sendable (SocketAddress) async -> Void
    /// The subscriptions `/msg` sockets and SSE streams open with, and every request that
    /// opens a channel from the store: one bucket per client address (loopback exempt, as from
    /// the connection limits); `nil` when unlimited.
    private let subscriptions: AddressRateLimiter
    /// Counts connections against the limits, which a reload may change.
    private let admission: ConnectionAdmission
    /// Connections whose token expires, closed (or renewed by the refresh hook) by one sweep a
    /// second.
    private let expiring: ExpiringConnections
    /// Every identified user's connections and streams, for the server API.
    private let users = ConnectedUsers()
    /// How many SSE streams are open, for the admin page and `/metrics`.
    private let streams = OpenStreams()
    /// How many connections and streams ended, by cause, for `/metrics`.
    private let disconnections = Disconnections()
    /// This process among the nodes, as the server API's `info` and lifecycle events name it:
    /// a shared store's id for it, so that presence and heartbeats name it the same.
    private let node: UUID
    /// Lifecycle events for webhooks, when they are configured.
    private let events: LifecycleEvents?
    /// Where commands to other nodes go: a shared store's broker.
    private var broker: (any LogBroker)? {
        if case .shared(_, let broker, _) = configuration.storage { broker } else { nil }
    }
    /// What `/metrics` serves.
    private let metrics: ServerMetrics
    /// The TLS certificate and key in use, once the server listens with TLS: a reload reads them again.
    private let tlsCredentials = NIOLockedValueBox<TLSCredentials?>(nil)
    /// Whether the server has begun to shut down, for `/readyz`.
    private let draining = DrainingFlag()

    /// A server with Squall's channel transports; `/msg` is the seed's chat on channel `msg`.
    /// - Parameters:
    ///   - configuration: address, limits and timeouts.
    ///   - logger: where to log; its level filters what is written.
    ///   - onListening: called with the bound address once the server accepts connections
    ///     (useful with port 0, which picks a free port).
    public init(
        configuration: SquallConfiguration = SquallConfiguration(),
        logger: Logger = Logger(label: "squall"),
        onListening: @escaping @Sendable (SocketAddress) async -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.logger = logger
        self.onListening = onListening
        let policy = LivePolicy(
            LivePolicy.Snapshot(
                origins: configuration.origins,
                publishRate: configuration.publishRate,
                subscribeRate: configuration.subscribeRate,
                access: AccessPolicy(
                    auth: configuration.auth, defaultNamespace: configuration.defaultNamespace, namespaces: configuration.namespaces,
                    maxInfo: configuration.maxInfo),
                apiKeys: configuration.apiKeys
            ), hooks: configuration.hooks, maxMessageSize: configuration.maxMessageSize)
        self.policy = policy
        self.expiring = ExpiringConnections(policy: policy)
        self.admission = ConnectionAdmission(configuration.limits, addresses: configuration.clientAddresses)
        let retention = configuration.retention
        let metrics = ServerMetrics()
        self.metrics = metrics
        let node: UUID = if case .shared(_, let broker, _) = configuration.storage { broker.node } else { UUID.random() }
        self.node = node
        let events = configuration.webhooks.map { webhooks in
            LifecycleEvents(configuration: webhooks, outbox: Self.outbox(of: configuration.storage), node: node)
        }
        self.events = events
        let observer = ServerObserver(metrics: metrics, events: events)
        switch configuration.storage {
        case .memory: break
        case .local(let store): store.observe(observer)
        case .shared(let log, _, _): log.observe(observer)
        }
        let hub = Hub(
            retention: retention, storage: configuration.storage, opening: configuration.opening,
            retentionOf: { channel in
                policy.current.access.namespace(of: channel).options.retention(within: retention)
            }, observer: observer)
        self.hub = hub
        let maxInfo = configuration.maxInfo
        let addresses = configuration.clientAddresses
        let subscriptions = AddressRateLimiter(rate: { policy.current.subscribeRate }, addresses: addresses, exemptsLoopback: true)
        self.subscriptions = subscriptions
        let pool = connections
        func mounted(_ handler: any WebSocketHandler, _ transport: String) -> MountedHandler {
            MountedHandler(handler: handler, pool: pool, logger: logger, transport: transport, events: events, disconnections: disconnections)
        }
        // A plain socket subscribes as it opens: its token, the namespace's rules and the
        // subscribe rate (charged to its client's address) decide at the upgrade.
        let msgCheck: WebSocketMount.Check = { head, uri, parameters, _, client in
            let query = uri.queryParameters
            let target = try ChannelTarget(channel: parameters["channel"].map(String.init) ?? "msg", query: query, maxInfo: maxInfo)
            let access = policy.current.access
            let identity = try policy.identify(Credentials.token(query: query, authorization: head.headers.first(name: "authorization")), in: access)
            try access.authorizeSubscribe(target.channel, by: identity, subscriptionToken: Credentials.subscriptionToken(query: query))
            try subscriptions.charge(client, action: "subscribed")
            return WebSocketMount.Acceptance(identity: identity)
        }
        let expiring = self.expiring
        let msg = MsgTransport(
            hub: hub, policy: policy, maxInfo: maxInfo, maxMessageSize: configuration.maxMessageSize, expiring: expiring, users: users)
        mounts.append(WebSocketMount(path: "/msg", handler: mounted(msg, "msg"), check: msgCheck))
        mounts.append(WebSocketMount(path: "/msg/{channel}", handler: mounted(msg, "msg"), check: msgCheck))
        let ws = WSTransport(hub: hub, configuration: configuration, policy: policy, opens: subscriptions, expiring: expiring, users: users)
        mounts.append(
            WebSocketMount(path: "/ws", handler: mounted(ws, "ws")) { head, uri, parameters, remote, client in
                var acceptance = try Self.negotiateSubprotocol(head, uri, parameters, remote, client)
                // Without a token here, a `/ws` client may still send one in its `connect`.
                let token = Credentials.token(query: uri.queryParameters, authorization: head.headers.first(name: "authorization"))
                if token != nil { acceptance.identity = try policy.identify(token, in: policy.current.access) }
                return acceptance
            })
    }

    /// Adds (or replaces) namespace `name`: channels `name:…` take `options` from their next
    /// subscribe, publish or read on. The typed form of ``namespace(_:_:)-(_,[String:NamespaceValue])``.
    public func namespace(_ name: String, _ options: NamespaceOptions) {
        policy.update { $0.access.namespaces[name] = options }
    }

    /// Adds (or replaces) namespace `name` built from a dictionary — the seed's
    /// `type(name, bases, dict)` for a channel family:
    ///
    /// ```swift
    /// try server.namespace("chat", ["history": 100, "presence": true, "publish": "subscribers"])
    /// ```
    /// - Throws: ``NamespaceOptions/InvalidOption`` naming the key and value that cannot be.
    public func namespace(_ name: String, _ dictionary: [String: NamespaceValue]) throws(NamespaceOptions.InvalidOption) {
        namespace(name, try NamespaceOptions(dictionary))
    }

    /// Applies what can change while the server runs from `configuration` — allowed origins,
    /// connection limits (for connections that come after), publish and subscribe rates, auth (keys are loaded first; a key that cannot be loaded
    /// changes nothing), API keys, the default namespace and the namespaces — and returns at once; every
    /// connection stays open. The TLS certificate and key are read again from the same files
    /// (a renewed certificate serves the next connection; one that cannot be read is logged and
    /// the one in use kept). The rest of `configuration` is ignored: it needs a restart.
    /// - Returns: whether the keys that verify tokens changed (a secret file's contents, say,
    ///   which the configuration's text does not show).
    @discardableResult
    public func reload(_ configuration: SquallConfiguration) async throws(TokenKeys.LoadError) -> Bool {
        let keys = try await TokenKeys.load(configuration.auth)
        let changed = keys.fingerprint != policy.current.access.keys.fingerprint
        // After the keys, which may refuse the whole reload: a refused reload changes nothing.
        if let credentials = tlsCredentials.withLockedValue({ $0 }) {
            do {
                if try credentials.reload() { logger.notice("reloaded the TLS certificate chain and key") }
            } catch {
                logger.error("kept the TLS certificate in use: \(error)")
            }
        }
        admission.update(configuration.limits)
        policy.update { snapshot in
            snapshot = LivePolicy.Snapshot(
                origins: configuration.origins,
                publishRate: configuration.publishRate,
                subscribeRate: configuration.subscribeRate,
                access: AccessPolicy(
                    auth: configuration.auth, keys: keys, defaultNamespace: configuration.defaultNamespace,
                    namespaces: configuration.namespaces, maxInfo: snapshot.access.maxInfo),
                apiKeys: configuration.apiKeys
            )
        }
        return changed
    }

    /// Serves `handler`'s hooks to WebSocket clients that connect to `path`, which may hold
    /// parameters (`/rooms/{room}`, read with `connection.parameters`). A plain HTTP request
    /// to `path` gets 426 (upgrade required), or the error `check` refuses it with. Mount
    /// before ``run()``; the first mount whose path matches serves a request, and the built-in
    /// `/msg`, `/msg/{channel}` and `/ws` come first.
    /// - Parameter check: decides each upgrade before the connection opens (an `Origin` or a
    ///   token, say) and may name a subprotocol or add response headers; without one, every
    ///   upgrade is accepted.
    ///
    /// A connection token the upgrade carries (`?token=`, `Authorization: Bearer`) is verified as
    /// on Squall's own routes — a bad one, or none with `--auth required`, is refused with 401 —
    /// and the handler finds it as ``WebSocketConnection/identity``.
    public mutating func mount(_ path: String, handler: some WebSocketHandler, check: UpgradeCheck? = nil) {
        let policy = self.policy
        mounts.append(
            WebSocketMount(
                path: path, handler: MountedHandler(handler: handler, pool: connections, logger: logger, events: events, disconnections: disconnections),
                check: check
            ) {
                head, uri in
                try policy.identify(
                    Credentials.token(query: uri.queryParameters, authorization: head.headers.first(name: "authorization")), in: policy.current.access)
            })
    }

    /// `SquallServer(127.0.0.1:8000)`, as service-lifecycle logs it.
    public var description: String { "SquallServer(\(configuration.host):\(configuration.port))" }

    /// Runs the server until SIGINT (Ctrl-C) or SIGTERM, then shuts it down gracefully (see the
    /// type) and returns.
    public func runService() async throws {
        let group = ServiceGroup(
            configuration: .init(services: [self], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
    }

    /// Runs the server until it is shut down gracefully or cancelled: the `Service` entry
    /// point, for a `ServiceGroup` of your own. On its own, use ``runService()``.
    public func run() async throws {
        // The configured keys, before the first client: a key that cannot be loaded stops the
        // server here rather than refusing every token later.
        try await policy.reloadKeys(configuration.auth)
        // Other nodes' `disconnect` and `unsubscribe` reach this node's users.
        broker?.follow(users)
        let listener = try makeListener()
        let group = ServiceGroup(
            configuration: .init(
                // Shut down in reverse: the drain first, while the HTTP server still runs.
                services: [
                    listener,
                    HubSweeper(hub: hub, interval: .seconds(10)),
                    MemoryTrimmer(openConnections: { [connections] in connections.count }),
                    KeyRefresher(policy: policy, logger: logger),
                    ExpirySweeper(connections: expiring),
                ]
                    + (events.map { events in
                        [
                            WebhookDispatcher(
                                outbox: events.outbox, configuration: events.configuration, metrics: metrics.webhooks, dropped: { events.dropped },
                                logger: logger)
                        ]
                    } ?? []) + [
                        ConnectionDrain(connections: connections, timeout: configuration.closeTimeout, draining: draining)
                    ],
                logger: logger
            )
        )
        do {
            try await group.run()
        } catch {
            await closeStores()
            throw error
        }
        // Every connection is closed: commit what is still queued before the process goes.
        await closeStores()
    }

    private func closeStores() async {
        await configuration.storage.close()
    }

    private func makeListener() throws -> Listener {
        let assets = try StaticAssets()
        let connections = self.connections
        let router = Router(context: SquallRequestContext.self)
        // Every HTTP refusal, from the router or the publish fast path, for /metrics and the
        // admin page.
        let refused: @Sendable (ErrorCode, String) -> Void = { [metrics] code, request in
            metrics.refusedRequest(code)
            metrics.recentRefusals.add(code.description, request)
        }
        router.add(middleware: AccessLogMiddleware(logger: logger, addresses: configuration.clientAddresses))
        router.add(middleware: OriginMiddleware { [policy] in policy.current.origins })
        router.add(
            middleware: JSONErrorMiddleware(maxMessageSize: configuration.maxMessageSize, refused: refused))
        let hub = self.hub
        let (streams, disconnections) = (self.streams, self.disconnections)
        // The channel routes first: Hummingbird's router tries a path's first component against
        // each route's in the order they were added, and publishes and polls are the hot ones.
        let departures = ClientDepartures()
        let polling = PollingTransport(hub: hub, configuration: configuration, policy: policy, departures: departures, opens: subscriptions)
        polling.add(to: router)
        SSETransport(
            hub: hub, configuration: configuration, policy: policy, departures: departures, subscriptions: subscriptions, users: users,
            events: events, streams: streams, disconnections: disconnections
        )
        .add(to: router)
        assets.add(to: router)
        router.get("/healthz") { _, _ in
            // Written by hand, keys sorted as everywhere else (JSONEncoder's order is unstable).
            var body = JSONText.Object()
            body.integer("channels", hub.channelCount)
            body.integer("connections", connections.count)
            body.string("status", "ok")
            body.string("version", version)
            body.integer("waiting_polls", hub.waitingPolls)
            return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: body.finish()))
        }
        let storage = configuration.storage
        let drainingFlag = self.draining
        router.get("/readyz") { _, _ in
            // Ready: listening (this answer says so), not shutting down, the store answering.
            let draining = drainingFlag.isDraining
            let store = await storage.answers(within: .seconds(2))
            var body = JSONText.Object()
            body.bool("draining", draining)
            body.string("status", !draining && store ? "ready" : "not_ready")
            body.bool("store", store)
            body.string("version", version)
            return Response(
                status: !draining && store ? .ok : .serviceUnavailable, headers: [.contentType: "application/json; charset=utf-8"],
                body: .init(byteBuffer: body.finish()))
        }
        let metrics = self.metrics
        let hooks = self.policy.hooks
        router.get("/metrics") { _, _ in
            // Every transport is named, so that one whose last connection closed reads 0.
            let connections = connections.countsByTransport.merging(["msg": 0, "sse": streams.count, "websocket": 0, "ws": 0]) { $0 + $1 }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(
                    byteBuffer: metrics.render(
                        hub: hub, connections: connections, disconnections: disconnections, events: events, hooks: hooks)))
        }

        let commands = ServerCommands(
            hub: hub, users: users, pool: connections, streams: streams, broker: broker, maxReplyBytes: configuration.maxReplyBytes, node: node,
            started: .now)
        broker?.report { commands.stats() }
        let gate = APIGate(policy: policy, maxBodyBytes: max(16 << 20, 2 * configuration.maxMessageSize))
        try ServerAPI(commands: commands, limits: ServerCommand.Limits(maxMessageSize: configuration.maxMessageSize, policy: policy))
            .add(to: router, gate: gate)
        var webhooksWaiting: (@Sendable () async -> Int)?
        if let outbox = events?.outbox { webhooksWaiting = { await outbox.depth() } }
        AdminFeed(
            commands: commands, streams: streams, refusals: metrics.recentRefusals, webhookFailures: metrics.webhooks.recentFailures,
            webhooksWaiting: webhooksWaiting
        ).add(to: router, gate: gate)

        let policy = self.policy
        let addresses = configuration.clientAddresses
        for mount in mounts {
            let check = mount.check
            router.get(RouterPath(mount.path)) { request, context -> Response in
                // The same checks as an upgrade gets, so a plain GET is told the same error.
                if let origin = request.headers[.origin], !policy.current.origins.admits(origin: origin, host: request.head.authority) {
                    throw APIError.originNotAllowed(origin)
                }
                let head = HTTPRequestHead(
                    version: .http1_1,
                    method: .GET,
                    uri: request.uri.description,
                    headers: HTTPHeaders(request.headers.map { ($0.name.rawName, $0.value) })
                )
                _ = try check(head, request.uri, context.parameters, context.remoteAddress, context.client(of: request, addresses))
                throw APIError.webSocketRequired(request.uri.path)
            }
        }

        let served = ServedRouter(
            router: router.buildResponder(), serverName: configuration.serverHeader ? "Squall/\(version)" : nil, logger: logger)
        let responder: HTTPChannelHandler.Responder = { request, writer, channel in try await served.respond(to: request, writer: writer, channel: channel) }
        let credentials = try configuration.tls.map { files throws(TLSFilesError) in try TLSCredentials(files) }
        tlsCredentials.withLockedValue { $0 = credentials }
        let tls = credentials.map { credentials in
            TLSAcceptor(
                credentials, responder: responder, departures: departures, idleTimeout: configuration.idleTimeout,
                bodyTimeout: configuration.bodyTimeout, writeTimeout: configuration.writeTimeout, closeTimeout: configuration.closeTimeout
            )
        }
        return Listener(
            host: configuration.host,
            port: configuration.port,
            upgrade: ConnectionSetup(
                responder: responder,
                mounts: mounts,
                configuration: configuration,
                departures: departures,
                policy: policy,
                admission: admission,
                expiring: expiring,
                users: users,
                metrics: metrics,
                tls: tls,
                logger: logger,
                fastPublish: PublishFastPath.Route(
                    transport: polling, serverName: configuration.serverHeader ? "Squall/\(version)" : nil, logger: logger,
                    refused: refused)
            ),
            logger: logger,
            onListening: onListening
        )
    }

    /// `/ws` speaks `squall.v1`. A client may offer it (and gets it back) or offer nothing; one
    /// that offers only other subprotocols is refused rather than silently misunderstood.
    @Sendable private static func negotiateSubprotocol(
        _ head: HTTPRequestHead,
        _ uri: URI,
        _ parameters: Parameters,
        _ remoteAddress: SocketAddress?,
        _ client: IPAddress?
    ) throws -> WebSocketMount.Acceptance {
        let offered = head.headers["Sec-WebSocket-Protocol"].joined(separator: ",")
        guard !offered.isEmpty else { return WebSocketMount.Acceptance() }
        let protocols = offered.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard protocols.contains(WSTransport.subprotocol) else {
            throw APIError(
                .unsupportedProtocol,
                message: "/ws speaks the \(WSTransport.subprotocol) subprotocol; offered: \(offered.prefix(100))"
            )
        }
        return WebSocketMount.Acceptance(headers: [.secWebSocketProtocol: WSTransport.subprotocol])
    }
}

extension SquallServer {
    /// Where `storage` keeps lifecycle events: its own outbox, if it has one, else memory.
    static func outbox(of storage: LogStorage) -> any EventOutbox {
        switch storage {
        case .memory: MemoryEventOutbox()
        case .local(let store): store as? any EventOutbox ?? MemoryEventOutbox()
        case .shared(let log, _, _): log as? any EventOutbox ?? MemoryEventOutbox()
        }
    }
}

extension SocketAddress {
    /// `host:port` as it appears in a URL: `127.0.0.1:8000`, `[::1]:8000`.
    var urlAuthority: String {
        let host = ipAddress ?? "localhost"
        let port = self.port.map { ":\($0)" } ?? ""
        return host.contains(":") ? "[\(host)]\(port)" : "\(host)\(port)"
    }
}
