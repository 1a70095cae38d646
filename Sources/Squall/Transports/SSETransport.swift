// SPDX-License-Identifier: Apache-2.0

import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle
import SquallCore
import Synchronization

/// `GET /channels/{name}/events`: a channel as Server-Sent Events, resuming from `Last-Event-ID`
/// or `since`; `presence=true` adds join and leave events.
///
/// The channel's log is open before the response starts, so that a store that cannot give it
/// in time is answered **503** `store_unavailable`, not with a stream that ends at once; the
/// stream's subscription is charged to its client's address (``SquallConfiguration/subscribeRate``).
struct SSETransport: Sendable {
    let hub: Hub
    let configuration: SquallConfiguration
    /// Keys and namespaces, read per request.
    let policy: LivePolicy
    let departures: ClientDepartures
    /// One bucket per client address for the subscriptions streams open with.
    let subscriptions: AddressRateLimiter
    /// Identified users' sessions, for the server API.
    let users: ConnectedUsers
    /// Lifecycle events, when webhooks are on.
    let events: LifecycleEvents?
    /// How many streams are open.
    let streams: OpenStreams
    /// How many ended, by cause.
    let disconnections: Disconnections

    func add(to router: Router<SquallRequestContext>) {
        router.group("channels/{name}").get("events", use: events)
    }

    @Sendable func events(_ request: Request, context: SquallRequestContext) async throws -> Response {
        let target = try ChannelTarget(
            channel: context.parameters.get("name"),
            query: request.uri.queryParameters,
            lastEventID: request.headers[Self.lastEventID],
            maxInfo: configuration.maxInfo
        )
        let access = policy.current.access
        let query = request.uri.queryParameters
        var identity = try policy.identify(Credentials.token(query: query, authorization: request.headers[.authorization]), in: access)
        let subscriptionExpiry = try access.authorizeSubscribe(target.channel, by: identity, subscriptionToken: Credentials.subscriptionToken(query: query))
        let address = context.client(of: request, configuration.clientAddresses)
        try subscriptions.charge(address, action: "subscribed")
        // A stream is a connection and a subscription: the connect hook, which may name its
        // user, then the subscribe hook decide before it starts.
        let client = UUID.random()
        var call = BackendHooks.Call(
            kind: .connect, client: client, transport: "sse", address: address, user: identity?.presenceUser, channel: target.channel,
            headers: request.headers.map { ($0.name.canonicalName, $0.value) })
        if let grant = try await policy.hooks.check(call, in: access) {
            identity = grant.identity(replacing: identity)
        }
        call.kind = .subscribe
        call.user = identity?.presenceUser
        _ = try await policy.hooks.check(call, in: access)
        call.kind = .refresh
        call.channel = nil
        let hooks = policy.hooks
        let refresh = hooks.url(.refresh, in: access).map { url in { @Sendable [call] in await hooks.ask(call, at: url) } }
        do {
            try await hub.open(target.channel)
        } catch {
            throw APIError.channelUnavailable
        }
        let presenceEvents = ["1", "true"].contains(query["presence"].map(String.init)) && access.presenceEventsAllowed(target.channel, by: identity)
        let stream = EventStream(
            client: client,
            hub: hub,
            target: target,
            identity: identity,
            expires: identity?.validUntil,
            tokenExpires: subscriptionExpiry,
            presenceEvents: presenceEvents,
            outbox: Outbox(limits: configuration.outbox),
            heartbeat: configuration.sseHeartbeat,
            closeTimeout: configuration.closeTimeout,
            socket: context.socket,
            departure: departures[context.socket],
            users: users,
            events: events,
            streams: streams,
            disconnections: disconnections,
            address: address,
            refresh: refresh
        )
        var headers: HTTPFields = [
            .contentType: "text/event-stream; charset=utf-8",
            .cacheControl: "no-cache",
        ]
        headers[Self.accelBuffering] = "no"  // tells nginx not to buffer the stream
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                try await stream.run(writer: &writer)
            })
    }

    private static let accelBuffering = HTTPField.Name("X-Accel-Buffering")!  // trap-ok: a valid field name, written here
    private static let lastEventID = HTTPField.Name("Last-Event-ID")!  // trap-ok: a valid field name, written here
}

/// One Server-Sent Events response: subscribes to a channel and writes its messages as events
/// until the client goes away, the server shuts down, or the client reads too slowly.
///
/// The first event is `subscribed` (`{"channel","client","epoch","offset","recovered"}`); then,
/// when resuming, every message after the position; then live messages. Each message event's
/// `id` is its position, so the browser's automatic reconnect resumes exactly after it. A
/// comment line every heartbeat keeps proxies from closing an idle stream and lets the server
/// notice a client that vanished.
struct EventStream: Sendable {
    /// The client's id, in presence and in the `subscribed` event.
    let client: UUID
    let hub: Hub
    let target: ChannelTarget
    /// Who the client is.
    let identity: ClientIdentity?
    /// When its connection token, or the channel's subscription token, stops being valid: the
    /// stream ends then with a `close` event, 4002.
    let expires: Date?
    /// When the channel's subscription token expires: the stream ends then, whatever the
    /// refresh hook says of the connection.
    let tokenExpires: Date?
    let presenceEvents: Bool
    let outbox: Outbox
    let heartbeat: Duration
    let closeTimeout: Duration
    let socket: any Channel
    let departure: ClientDeparture
    /// Identified users' sessions, which this stream joins while it runs.
    let users: ConnectedUsers
    /// Where its `connected` and `disconnected` events go, when webhooks are on.
    let events: LifecycleEvents?
    /// Counts it while it is open.
    let streams: OpenStreams
    /// Counts its ending, by cause.
    let disconnections: Disconnections
    /// The client's address, for its `connected` event.
    let address: IPAddress?
    /// The refresh hook's call, when one is set: asked when the stream's time is up, instead of
    /// ending it with 4002.
    let refresh: (@Sendable () async -> BackendHooks.Decision)?

    func run(writer: inout any ResponseBodyWriter) async throws {
        let outbox = self.outbox
        let heartbeat = self.heartbeat
        let subscriber = SSESubscriber(outbox: outbox, socket: socket, closeTimeout: closeTimeout)
        // A client that went away ends the stream now, not at the next heartbeat's failed write.
        departure.whenDeparted { outbox.finish() }
        let client = self.client
        let since = target.since
        // The channel was opened before the response began; should the sweep have let it go
        // since, the stream waits for it again, or ends with a close event if it cannot have it.
        hub.subscribe(
            subscriber,
            to: target.channel,
            from: since,
            member: PresenceMember(id: client, info: target.info ?? identity?.info, transport: "sse", user: identity?.presenceUser),
            presenceEvents: presenceEvents
        ) { result in
            switch result {
            case .success(let subscription): outbox.push(.text(utf8: Self.subscribedEvent(subscription, client: client, resumedFrom: since)))
            case .failure: outbox.close(.storeUnavailable)
            }
        }
        defer { hub.unsubscribe(subscriber, from: target.channel) }
        let session = SSESession(outbox: outbox, channel: target.channel)
        if let user = identity?.presenceUser { users.add(session, user: user) }
        events?.connected(client: client, transport: "sse", user: identity?.presenceUser, address: address)
        streams.opened()
        defer { streams.closed() }
        // Ended by the server (its `close` event says why), or by the client going away.
        let ending = Mutex<Disconnect?>(nil)
        defer {
            let disconnect = ending.withLock { $0 }
            let cause: DisconnectCause =
                session.kicked.withLock { $0 } ? .kicked : session.denied.withLock { $0 } ? .denied : disconnect.map(DisconnectCause.init) ?? .clientClose
            disconnections.count(cause)
            events?.disconnected(client: client, transport: "sse", user: identity?.presenceUser, cause: cause, disconnect: disconnect)
        }
        defer { if let user = identity?.presenceUser { users.remove(session, user: user) } }

        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                if expires != nil || tokenExpires != nil {
                    let (refresh, tokenExpires) = (self.refresh, self.tokenExpires)
                    group.addTask {
                        var own = expires
                        while let until = [own, tokenExpires].compactMap({ $0 }).min() {
                            try await Task.sleep(for: .seconds(max(0, min(until.timeIntervalSinceNow, 1e9))))
                            // The subscription token's time, or no refresh hook: the end.
                            guard until == own, let refresh else {
                                outbox.close(.tokenExpired)
                                return
                            }
                            let decision = await refresh()
                            if let disconnect = decision.disconnect {
                                if case .deny = decision { session.denied.withLock { $0 = true } }
                                outbox.close(disconnect)
                                return
                            }
                            // Renewed: until the new expire_at, or for good without one.
                            guard case .allow(let grant) = decision else { return }
                            if let next = grant.expires, next <= Date() {
                                outbox.close(.tokenExpired)
                                return
                            }
                            own = grant.expires
                        }
                    }
                }
                group.addTask {
                    while outbox.disconnect == nil {
                        try await Task.sleep(for: heartbeat)
                        outbox.push(.text(utf8: SSE.heartbeat))
                    }
                }
                loop: while let batch = await outbox.next() {
                    switch batch {
                    case .payloads(let payloads):
                        try await writer.write(contentsOf: payloads.map(\.bytes))
                    case .disconnect(let disconnect):
                        ending.withLock { $0 = disconnect }
                        try await writer.write(Self.closeEvent(disconnect))
                        break loop
                    }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            outbox.close(.shutdown)
        }
        try await writer.finish(nil)
    }

    /// The first event. Its `id` is where a reconnect should resume: the requested position when
    /// it is being replayed, else the current one (a fresh stream, or one that could not resume
    /// and must not ask for the same lost position again).
    static func subscribedEvent(_ subscription: Subscription, client: UUID, resumedFrom since: StreamPosition?) -> ByteBuffer {
        var body = JSONText.Object()
        body.string("channel", subscription.channel.rawValue)
        body.string("client", client.uuidString)
        body.string("epoch", subscription.position.epoch)
        body.integer("offset", subscription.position.offset)
        body.bool("recovered", subscription.recovered)
        let id = subscription.recovered == true ? since : subscription.position
        return SSE.event("subscribed", id: id?.description, data: body.finish())
    }

    /// The last event before the server ends the stream: `{"code","reason"}`.
    static func closeEvent(_ disconnect: Disconnect) -> ByteBuffer {
        var body = JSONText.Object()
        body.integer("code", disconnect.code)
        body.string("reason", disconnect.reason)
        return SSE.event("close", data: body.finish())
    }
}

/// A stream as the server API sees it: ended with a `close` event by `disconnect`, and by
/// `unsubscribe` from its channel (4501).
final class SSESession: UserSession {
    let outbox: Outbox
    let channel: ChannelName
    /// Whether the server API's `disconnect` ended it.
    let kicked = Mutex(false)
    /// Whether the refresh hook ended it.
    let denied = Mutex(false)

    init(outbox: Outbox, channel: ChannelName) {
        self.outbox = outbox
        self.channel = channel
    }

    func disconnect(_ disconnect: Disconnect) {
        kicked.withLock { $0 = true }
        outbox.close(disconnect)
    }

    func unsubscribe(from channel: ChannelName) -> Bool {
        guard channel == self.channel else { return false }
        outbox.close(.unsubscribedByServer)
        return true
    }
}

/// Queues a channel's messages and presence events as SSE events in a stream's outbox.
final class SSESubscriber: Subscriber {
    let outbox: Outbox
    let socket: any Channel
    let closeTimeout: Duration

    init(outbox: Outbox, socket: any Channel, closeTimeout: Duration) {
        self.outbox = outbox
        self.socket = socket
        self.closeTimeout = closeTimeout
    }

    func receive(_ message: Message) {
        queue(.text(utf8: message.encoded(SSEMessageEvent.self)))
    }

    func receive(_ event: PresenceEvent) {
        queue(.text(utf8: event.encoded(SSEPresenceEvent.self)))
    }

    func lost(_ channel: ChannelName, current: StreamPosition) {
        outbox.close(.logRestarted)
    }

    /// A stream whose outbox overflows is cut off after the close timeout: its client stopped
    /// reading, so even the final `close` event may never get through. A browser's EventSource
    /// then reconnects with `Last-Event-ID` and resumes from the log.
    private func queue(_ payload: Payload) {
        if outbox.push(payload) == .overflowed {
            socket.close(after: closeTimeout)
        }
    }
}
