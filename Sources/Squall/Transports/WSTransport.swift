// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import SquallCore
import Synchronization

/// `WS /ws`: one socket, many channels, in the `squall.v1` JSON protocol (docs/protocol.md).
///
/// Every request is a JSON object in a text frame with an `op` — `subscribe`, `unsubscribe`,
/// `publish`, `history`, `presence`, `ping` — and an optional `ref` the reply echoes. Messages of
/// subscribed channels arrive as JSON envelopes; join and leave events for channels subscribed
/// with `"presence": true`. A bad request gets an `error` reply with a stable code and the socket
/// stays open: only the WebSocket layer's own limits (size, UTF-8) close it.
final class WSTransport: NonBlockingWebSocketHandler {
    /// The WebSocket subprotocol name clients may offer.
    static let subprotocol = "squall.v1"
    /// Most channels one connection may be subscribed to at once, so that one client cannot
    /// make the hub hold an unbounded number of channels.
    static let maxSubscriptions = 1000

    let hub: Hub
    /// Rates, keys and namespaces, read per request.
    let policy: LivePolicy
    /// The subscribe rate's buckets per client address, which a request that opens a channel
    /// from the store is charged to as well.
    private let opens: AddressRateLimiter
    private let limits: ProtocolRequest.Limits
    private let budget: ReadBudget
    private let maxMessageSize: Int
    /// How long a connection under `auth: required` may take to send its `connect`.
    private let handshakeTimeout: Duration
    /// Closes connections whose token expired; a `refresh` moves a connection's time.
    let expiring: ExpiringConnections
    /// Identified users' connections, which a `connect` adds this connection to.
    let users: ConnectedUsers
    let subscribers = Mutex<[UUID: WSSubscriber]>([:])

    init(
        hub: Hub, configuration: SquallConfiguration, policy: LivePolicy, opens: AddressRateLimiter, expiring: ExpiringConnections,
        users: ConnectedUsers
    ) {
        self.hub = hub
        self.users = users
        self.expiring = expiring
        self.policy = policy
        self.opens = opens
        self.limits = ProtocolRequest.Limits(ref: configuration.maxRef, info: configuration.maxInfo)
        self.budget = ReadBudget.envelopes(maxBytes: configuration.maxReplyBytes)
        self.maxMessageSize = configuration.maxMessageSize
        self.handshakeTimeout = configuration.handshakeTimeout
    }

    func openNow(_ connection: WebSocketConnection) throws {
        let snapshot = policy.current
        let subscriber = WSSubscriber(
            connection: connection, publishRate: snapshot.publishRate?.bucketRate, subscribeRate: snapshot.subscribeRate?.bucketRate,
            identity: connection.identity, connected: connection.identity != nil || snapshot.access.auth.mode == .optional)
        subscribers.withLock { $0[connection.id] = subscriber }
        if connection.identity == nil, snapshot.access.auth.mode == .required {
            // It may send its token in a `connect`, within the time a handshake is given.
            expiring.watch(connection, own: Date().addingTimeInterval(handshakeTimeout.inSeconds), closing: .unauthorized("no connect in time"))
        }
        if let hook = policy.hooks.url(.connect, in: snapshot.access) {
            // Welcomed once the backend lets it in; requests that come meanwhile wait.
            subscriber.early.hold()
            return askConnectHook(hook, for: subscriber)
        }
        welcome(subscriber)
    }

    /// The connection is let in: announced, watched, welcomed.
    func welcome(_ subscriber: WSSubscriber) {
        let connection = subscriber.connection
        subscriber.announced.withLock { $0 = true }
        connection.announceConnected(user: subscriber.identity.withLock { $0 }?.presenceUser)
        watchExpiry(of: subscriber)
        send(ProtocolReply.welcome(client: connection.id, protocol: Self.subprotocol), to: connection)
    }

    func onMessageNow(_ connection: WebSocketConnection, _ message: Payload) throws {
        guard let subscriber = subscribers.withLock({ $0[connection.id] }) else { return }
        switch subscriber.early.keep(message) {
        case .held: return connection.holdReading()
        case .tooMuch: return connection.close(.earlyMessages)
        case .notDeciding: handle(message, from: subscriber)
        }
    }

    /// One request: answered, or refused with an `error` reply.
    func handle(_ message: Payload, from subscriber: WSSubscriber) {
        let connection = subscriber.connection
        var ref: RawJSON?
        do throws(ProtocolError) {
            guard message.kind == .text else {
                throw ProtocolError(.unsupportedFrame, message: "squall.v1 requests are JSON in text frames")
            }
            let request = try ProtocolRequest.decode(message.bytes, limits: limits, ref: &ref)
            try handle(request, from: subscriber)
        } catch {
            send(ProtocolReply.failure(ref: ref, code: error.code.description, message: error.message), to: connection)
        }
    }

    func onCloseNow(_ connection: WebSocketConnection, _ cause: CloseCause) {
        guard let subscriber = subscribers.withLock({ $0.removeValue(forKey: connection.id) }) else { return }
        expiring.forget(connection)
        let user = subscriber.identity.withLock { $0 }?.presenceUser
        // A user known from the upgrade is the server's to forget; one from a `connect` or the
        // connect hook, this handler's.
        if let user, user != connection.identity?.presenceUser { users.remove(connection, user: user) }
        if subscriber.announced.withLock({ $0 }) { connection.announceDisconnected(cause, user: user) }
        for channel in subscriber.channels.withLock({ Array($0.keys) }) {
            hub.unsubscribe(subscriber, from: channel)
        }
    }

    private func handle(_ request: ProtocolRequest, from subscriber: WSSubscriber) throws(ProtocolError) {
        let connection = subscriber.connection
        guard let op = request.op else { throw ProtocolError(.missingField, message: "every request needs \"op\"") }
        let access = policy.current.access
        if op == "connect" || op == "refresh" {
            return connect(request, op, from: subscriber, access: access)
        }
        // `auth: required` is decided when a client connects: a reload never drops a connection.
        guard op == "ping" || subscriber.connected.withLock({ $0 }) else {
            // `--auth required` and no token at the upgrade: nothing before a `connect`.
            return connection.close(.unauthorized("send {\"op\":\"connect\",\"token\":…} first"))
        }
        let identity = subscriber.identity.withLock { $0 }
        switch op {
        case "ping":
            send(ProtocolReply.pong(ref: request.ref), to: connection)
        case "subscribe":
            let channel = try channel(of: request, op)
            let subscriptionExpiry = try Self.authorize { () throws(APIError) in
                try access.authorizeSubscribe(channel, by: identity, subscriptionToken: request.token)
            }
            try chargeSubscription(of: subscriber)
            try chargeOpening(channel, for: connection)
            let member = PresenceMember(id: connection.id, info: request.info ?? identity?.info, transport: "ws", user: identity?.presenceUser)
            let presenceEvents = (request.presence ?? false) && access.presenceEventsAllowed(channel, by: identity)
            let attempt = subscriber.channels.withLock { channels -> UInt64? in
                guard channels[channel] != nil || channels.count < Self.maxSubscriptions else { return nil }
                let attempt = subscriber.nextAttempt()
                channels[channel] = attempt
                return attempt
            }
            guard let attempt else {
                throw ProtocolError(.tooManySubscriptions, message: "a connection may subscribe to at most \(Self.maxSubscriptions) channels")
            }
            let ref = request.ref
            // Answered under the channel's lock, before the replay: at once when the channel is
            // open, else once the store has given its log.
            if subscriber.pending.begin() { connection.holdReading() }
            let since = request.since
            let join: @Sendable () -> Void = { [self] in
                hub.subscribe(subscriber, to: channel, from: since, member: member, presenceEvents: presenceEvents) { [self] result in
                    if subscriber.pending.end() { connection.resumeReading() }
                    switch result {
                    case .success(let subscription):
                        // A private channel's subscription token: subscribing again with a fresh
                        // one before it expires renews it, as `refresh` does a connection token —
                        // unless the connection closed, or left the channel, while it opened.
                        let current = subscribers.withLock { $0[connection.id] } === subscriber && subscriber.channels.withLock { $0[channel] == attempt }
                        if current {
                            subscriber.subscriptionExpiries.withLock { $0[channel] = subscriptionExpiry }
                            watchExpiry(of: subscriber)
                        }
                        send(ProtocolReply.subscribed(ref: ref, subscription), to: connection)
                    case .failure:
                        // Only if no later subscribe to the channel is on its way: that one may
                        // succeed (on the channel opened anew), and must be unsubscribed at close.
                        subscriber.channels.withLock { channels in
                            if channels[channel] == attempt { channels[channel] = nil }
                        }
                        send(Self.failure(ref, APIError.channelUnavailable), to: connection)
                    }
                }
            }
            guard let hook = policy.hooks.url(.subscribe, channel: channel, in: access) else { return join() }
            askSubscribeHook(hook, channel: channel, attempt: attempt, ref: ref, for: subscriber, then: join)
        case "unsubscribe":
            let channel = try channel(of: request, op)
            guard subscriber.channels.withLock({ $0[channel] != nil }) else {
                throw ProtocolError(.notSubscribed, message: "not subscribed to \(channel)")
            }
            try chargeSubscription(of: subscriber)
            leave(channel, subscriber, ref: request.ref)
        case "publish":
            let channel = try channel(of: request, op)
            let subscribed = subscriber.channels.withLock { $0[channel] != nil }
            try Self.authorize { () throws(APIError) in try access.authorizePublish(channel, by: identity, subscribed: subscribed) }
            let payload = try payload(of: request)
            let namespace = access.namespace(of: channel).options
            if let limit = namespace.maxMessageSize, payload.bytes.readableBytes > min(limit, maxMessageSize) {
                throw ProtocolError(APIError.messageTooLarge(limit: min(limit, maxMessageSize)))
            }
            if let rate = policy.current.publishRate, let wait = WSSubscriber.take(from: subscriber.publishes, rate) {
                throw ProtocolError(APIError.rateLimited(rate, wait: wait))
            }
            if let rate = namespace.publishRate, let wait = subscriber.takeNamespacePublish(access.namespace(of: channel).name, rate) {
                throw ProtocolError(APIError.rateLimited(rate, wait: wait))
            }
            try chargeOpening(channel, for: connection)
            let idempotencyKey = try request.idempotencyKey.map { text throws(ProtocolError) in
                guard let key = try? IdempotencyKey(text) else {
                    throw ProtocolError(.invalidParameter("idempotency_key", IdempotencyKey.requirement))
                }
                return key
            }
            let ref = request.ref
            // `published` once the message is in the log (with a store: committed), which may
            // be after later requests of this connection are answered; `ref` tells them apart.
            if subscriber.pending.begin() { connection.holdReading() }
            let publish: @Sendable (Payload) -> Void = { [self] payload in
                hub.publish(payload, to: channel, publisher: connection.id, idempotencyKey: idempotencyKey) { [self] result in
                    if subscriber.pending.end() { connection.resumeReading() }
                    switch result {
                    case .success(let message):
                        send(ProtocolReply.published(message, ref: ref), to: connection)
                    case .failure(let error):
                        send(Self.failure(ref, APIError(error)), to: connection)
                    }
                }
            }
            guard let hook = policy.hooks.url(.publish, channel: channel, in: access) else { return publish(payload) }
            askPublishHook(hook, channel: channel, payload: payload, ref: ref, for: subscriber, then: publish)
        case "history":
            let channel = try channel(of: request, op)
            let subscribed = subscriber.channels.withLock { $0[channel] != nil }
            try Self.authorize { () throws(APIError) in try access.authorizeHistory(channel, by: identity, subscribed: subscribed) }
            if let limit = request.limit, limit < 1 {
                throw ProtocolError(.invalidParameter("limit", "a positive integer"))
            }
            try chargeOpening(channel, for: connection)
            let ref = request.ref
            if subscriber.pending.begin() { connection.holdReading() }
            hub.history(channel, since: request.since, limit: request.limit ?? .max, budget: budget) { [self] result in
                if subscriber.pending.end() { connection.resumeReading() }
                switch result {
                case .success(let history): send(ProtocolReply.history(history, ref: ref), to: connection)
                case .failure: send(Self.failure(ref, APIError.channelUnavailable), to: connection)
                }
            }
        case "presence":
            let channel = try channel(of: request, op)
            let subscribed = subscriber.channels.withLock { $0[channel] != nil }
            try Self.authorize { () throws(APIError) in try access.authorizePresence(channel, by: identity, subscribed: subscribed) }
            guard access.namespace(of: channel).options.presence else {
                throw ProtocolError(APIError.permissionDenied(namespace: access.namespace(of: channel).name, rule: "presence: false", "presence is off here"))
            }
            let after = try request.after.map { text throws(ProtocolError) in
                guard let id = UUID(uuidString: text) else { throw ProtocolError(.invalidParameter("after", "a client id from an earlier page")) }
                return id
            }
            let page = hub.presence(channel, after: after, maxBytes: budget.maxBytes)
            send(ProtocolReply.presence(page, ref: request.ref), to: connection)
        default:
            throw ProtocolError(
                .unknownOp, message: "unknown op \"\(op.prefix(64))\"; one of connect, refresh, subscribe, unsubscribe, publish, history, presence, ping"
            )
        }
    }

    /// `connect` (a token for a connection that upgraded without one) and `refresh` (a fresh
    /// token before the one it has expires): a token that does not verify, or names another
    /// user than the connection's, closes the connection with 4001.
    private func connect(_ request: ProtocolRequest, _ op: String, from subscriber: WSSubscriber, access: AccessPolicy) {
        let connection = subscriber.connection
        let identity: ClientIdentity
        do {
            guard !access.keys.isEmpty else { return connection.close(.unauthorized("this server has no key to verify tokens with")) }
            guard let token = request.token, let verified = try policy.identify(token, in: access) else {
                return connection.close(.unauthorized("\(op) needs \"token\""))
            }
            identity = verified
        } catch {
            return connection.close(.unauthorized(error.message))
        }
        if let current = subscriber.identity.withLock({ $0 }), current.user != identity.user {
            return connection.close(.unauthorized("a refreshed token must be for the same user"))
        }
        let previous = subscriber.identity.withLock { held in
            defer { held = identity }
            return held
        }
        subscriber.connected.withLock { $0 = true }
        if previous?.presenceUser == nil, let user = identity.presenceUser, user != connection.identity?.presenceUser {
            users.add(connection, user: user)
        }
        watchExpiry(of: subscriber)
        send(
            ProtocolReply.connected(ref: request.ref, type: op == "connect" ? "connected" : "refreshed", user: identity.user, expires: identity.expires),
            to: connection)
    }

    /// Takes `subscriber` off `channel` and says so with an `unsubscribed` reply (`ref` is the
    /// request's; none when the server API asked).
    private func leave(_ channel: ChannelName, _ subscriber: WSSubscriber, ref: RawJSON?) {
        subscriber.channels.withLock { $0[channel] = nil }
        if subscriber.subscriptionExpiries.withLock({ $0.removeValue(forKey: channel) }) != nil {
            watchExpiry(of: subscriber)
        }
        hub.unsubscribe(subscriber, from: channel)
        send(ProtocolReply.unsubscribed(ref: ref, channel: channel), to: subscriber.connection)
    }

    /// Closes the connection with 4002 when its connection token, or the first of its private
    /// channels' subscription tokens, stops being valid.
    func watchExpiry(of subscriber: WSSubscriber) {
        let identity = subscriber.identity.withLock { $0 }
        // Before its `connect`, an anonymous connection under `auth: required` has its deadline.
        guard subscriber.connected.withLock({ $0 }) else { return }
        let tokens = subscriber.subscriptionExpiries.withLock { $0.values.min() }
        expiring.watch(
            subscriber.connection, own: identity?.validUntil, tokens: tokens, user: identity?.presenceUser, transport: "ws",
            renewed: { until in subscriber.identity.withLock { $0 = $0?.renewed(until: until) } })
    }

    /// A refusal of the access policy as an `error` reply.
    @discardableResult
    private static func authorize<Value>(_ decide: () throws(APIError) -> Value) throws(ProtocolError) -> Value {
        do {
            return try decide()
        } catch {
            throw ProtocolError(error)
        }
    }

    /// Takes a subscription token: a subscribe or unsubscribe over the rate is refused.
    private func chargeSubscription(of subscriber: WSSubscriber) throws(ProtocolError) {
        guard let rate = policy.current.subscribeRate, let wait = WSSubscriber.take(from: subscriber.subscriptions, rate) else { return }
        throw ProtocolError(APIError.rateLimited(rate, wait: wait, action: "subscribed"))
    }

    /// A request that would open `channel` from the store takes a token from the client
    /// address's subscribe bucket too: however many connections it holds, one client cannot
    /// keep the store's reads to itself by asking for names nobody uses.
    private func chargeOpening(_ channel: ChannelName, for connection: WebSocketConnection) throws(ProtocolError) {
        guard hub.opensFromStore(channel) else { return }
        do {
            try opens.charge(connection.client, action: "opened channels")
        } catch {
            throw ProtocolError(error)
        }
    }

    private func channel(of request: ProtocolRequest, _ op: String) throws(ProtocolError) -> ChannelName {
        guard let name = request.channel else { throw .missingField("channel", for: op) }
        do {
            return try ChannelName(name)
        } catch {
            throw ProtocolError(.invalidChannel(error))
        }
    }

    private func payload(of request: ProtocolRequest) throws(ProtocolError) -> Payload {
        guard let data = request.data else { throw .missingField("data", for: "publish") }
        switch request.encoding {
        case nil:
            return .text(data)
        case "base64":
            guard let bytes = Data(base64Encoded: data) else {
                throw ProtocolError(.invalidRequest, message: "data is not valid base64")
            }
            return .binary(bytes)
        case let other?:
            throw ProtocolError(.invalidRequest, message: "encoding must be \"base64\" or absent, got \"\(other.prefix(32))\"")
        }
    }

    /// An `error` reply with the code and message the HTTP API answers `error` with.
    static func failure(_ ref: RawJSON?, _ error: APIError) -> ByteBuffer {
        ProtocolReply.failure(ref: ref, code: error.code.description, message: error.message)
    }

    func send(_ reply: ByteBuffer, to connection: WebSocketConnection) {
        connection.writeMessage(.text(utf8: reply))
    }
}

extension WSTransport: ChannelLeaving {
    /// The server API took the connection's user off `channel`: the connection stays open and
    /// is told with an `unsubscribed` reply without `ref`.
    func unsubscribe(_ connection: WebSocketConnection, from channel: ChannelName) -> Bool {
        guard let subscriber = subscribers.withLock({ $0[connection.id] }), subscriber.channels.withLock({ $0[channel] != nil }) else {
            return false
        }
        // On the connection's loop, in order with its own subscribes and unsubscribes.
        connection.socket.eventLoop.execute { [self] in
            guard subscribers.withLock({ $0[connection.id] }) === subscriber, subscriber.channels.withLock({ $0[channel] != nil }) else { return }
            leave(channel, subscriber, ref: nil)
        }
        return true
    }
}
