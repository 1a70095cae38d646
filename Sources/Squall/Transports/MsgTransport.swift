// SPDX-License-Identifier: Apache-2.0

import Foundation
import Hummingbird
import SquallCore
import Synchronization

/// The seed's plain WebSocket, now on a channel: `WS /msg` is channel `msg`, `WS /msg/{channel}`
/// any other. Frames go in and out bare — what a client sends is published to the channel's log,
/// and every message of the channel, from any transport, arrives as the frame that was published
/// (text or binary). A bare browser `WebSocket` works exactly as in the seed.
///
/// `?since=EPOCH:OFFSET` resumes after a position. A position that cannot be resumed closes the
/// socket with 4010 and the current position in the reason, since a bare frame has no room to
/// say "you missed messages"; a channel whose log the store cannot give in time closes it with
/// 1011 (``Disconnect/storeUnavailable``). `?name=` is shown in presence as `{"name": …}`.
///
/// Over the publish rate a frame is not published; a client that keeps over it until its burst
/// is used up is closed with 1008 (``Disconnect/publishRateExceeded``), since a bare frame has
/// no reply to say so.
///
/// Its token (``WebSocketConnection/identity``) and the namespace's rules were checked at the
/// upgrade for the subscribe; whether it may publish is decided as it opens, and a frame it may
/// not publish closes it with 4003 (``Disconnect/permissionDenied(_:)``). A connection whose
/// token expires is closed with 4002.
final class MsgTransport: NonBlockingWebSocketHandler {
    let hub: Hub
    let policy: LivePolicy
    let maxInfo: RawJSON.Limits
    /// The server's largest message; a namespace may allow less.
    let maxMessageSize: Int
    /// Closes connections whose token expired.
    let expiring: ExpiringConnections
    /// Identified users' connections, which a user the connect hook names joins.
    let users: ConnectedUsers
    private let subscribers = Mutex<[UUID: MsgSubscriber]>([:])

    init(hub: Hub, policy: LivePolicy, maxInfo: RawJSON.Limits, maxMessageSize: Int, expiring: ExpiringConnections, users: ConnectedUsers) {
        self.hub = hub
        self.expiring = expiring
        self.policy = policy
        self.maxInfo = maxInfo
        self.maxMessageSize = maxMessageSize
        self.users = users
    }

    func openNow(_ connection: WebSocketConnection) throws {
        // `/msg` is channel `msg`; `/msg/{channel}` any other.
        let target = try ChannelTarget(
            channel: connection.parameters.get("channel") ?? "msg",
            query: connection.uri.queryParameters,
            maxInfo: maxInfo
        )
        let access = policy.current.access
        // The upgrade's check let the subscribe pass; a private channel's subscription token
        // may expire before the connection's.
        let subscriptionExpiry =
            (try? access.authorizeSubscribe(
                target.channel, by: connection.identity, subscriptionToken: Credentials.subscriptionToken(query: connection.uri.queryParameters))) ?? nil
        let subscriber = MsgSubscriber(
            connection: connection, channel: target.channel, publishRate: policy.current.publishRate?.bucketRate, identity: connection.identity)
        subscribers.withLock { $0[connection.id] = subscriber }
        let hooks = policy.hooks
        let connectHook = hooks.url(.connect, in: access)
        let subscribeHook = hooks.url(.subscribe, channel: target.channel, in: access)
        guard connectHook != nil || subscribeHook != nil else {
            return subscribe(subscriber, target, subscriptionExpiry: subscriptionExpiry)
        }
        // The backend decides first; frames that come meanwhile wait, in order.
        subscriber.early.hold()
        var call = BackendHooks.Call(
            kind: .connect, client: connection.id, transport: "msg", address: connection.client, user: connection.identity?.presenceUser,
            channel: target.channel, headers: connection.requestHeaders)
        Task {
            var identity = connection.identity
            if let connectHook {
                let decision = await hooks.ask(call, at: connectHook)
                guard case .allow(let grant) = decision else { return connection.close(deniedBy: decision) }
                identity = grant.identity(replacing: identity)
            }
            if let subscribeHook {
                call.kind = .subscribe
                call.user = identity?.presenceUser
                let decision = await hooks.ask(call, at: subscribeHook)
                guard case .allow = decision else { return connection.close(deniedBy: decision) }
            }
            connection.socket.eventLoop.execute { [self, identity] in
                // Closed while the backend decided: nothing to subscribe.
                guard subscribers.withLock({ $0[connection.id] === subscriber }) else { return }
                subscriber.identity.withLock { $0 = identity }
                if let user = identity?.presenceUser, user != connection.identity?.presenceUser { users.add(connection, user: user) }
                subscribe(subscriber, target, subscriptionExpiry: subscriptionExpiry)
                for message in subscriber.early.release() {
                    publish(message, from: subscriber)
                }
                connection.resumeReading()
            }
        }
    }

    /// Subscribes the socket, now that it is let in, announces it, and watches when its time is
    /// up.
    private func subscribe(_ subscriber: MsgSubscriber, _ target: ChannelTarget, subscriptionExpiry: Date?) {
        let connection = subscriber.connection
        let identity = subscriber.identity.withLock { $0 }
        subscriber.announced.withLock { $0 = true }
        connection.announceConnected(user: identity?.presenceUser)
        expiring.watch(
            connection, own: identity?.validUntil, tokens: subscriptionExpiry, user: identity?.presenceUser, transport: "msg",
            renewed: { until in subscriber.identity.withLock { $0 = $0?.renewed(until: until) } })
        let member = PresenceMember(id: connection.id, info: target.info ?? identity?.info, transport: "msg", user: identity?.presenceUser)
        // Frames the client sends meanwhile are published after this subscription: the hub
        // keeps a channel's operations in order while its log is read from the store.
        hub.subscribe(subscriber, to: target.channel, from: target.since, member: member) { result in
            switch result {
            case .success(let subscription) where subscription.recovered == false:
                connection.close(.positionNotRecoverable(current: subscription.position))
            case .success:
                break
            case .failure:
                connection.close(.storeUnavailable)
            }
        }
    }

    func onMessageNow(_ connection: WebSocketConnection, _ message: Payload) throws {
        guard let subscriber = subscribers.withLock({ $0[connection.id] }) else { return }
        switch subscriber.early.keep(message) {
        case .held:
            return connection.holdReading()
        case .tooMuch:
            return connection.close(.earlyMessages)
        case .notDeciding:
            publish(message, from: subscriber)
        }
    }

    /// Each frame is a publish, decided by the rules and rates in force now (a reload changes
    /// them for sockets already open), and by the publish hook when there is one.
    private func publish(_ message: Payload, from subscriber: MsgSubscriber) {
        let connection = subscriber.connection
        let snapshot = policy.current
        let namespace = snapshot.access.namespace(of: subscriber.channel)
        let identity = subscriber.identity.withLock { $0 }
        do {
            try snapshot.access.authorizePublish(subscriber.channel, by: identity, subscribed: true)
        } catch {
            return connection.close(.permissionDenied(error.message))
        }
        guard message.bytes.readableBytes <= min(maxMessageSize, namespace.options.maxMessageSize ?? .max) else {
            return connection.close(.messageTooBig)
        }
        if !subscriber.takePublish(snapshot.publishRate?.bucketRate, namespace.options.publishRate?.bucketRate) {
            // A bare frame has no reply: a client that has used up its burst is told by the close.
            return connection.close(.publishRateExceeded)
        }
        // /msg has no acknowledgements: a message the store could not keep is not broadcast.
        if subscriber.pending.begin() { connection.holdReading() }
        let hub = self.hub
        let channel = subscriber.channel
        guard let hook = policy.hooks.url(.publish, channel: channel, in: snapshot.access) else {
            return hub.publish(message, to: channel, publisher: connection.id) { _ in
                if subscriber.pending.end() { connection.resumeReading() }
            }
        }
        let call = BackendHooks.Call(
            kind: .publish, client: connection.id, transport: "msg", address: connection.client, user: identity?.presenceUser, channel: channel,
            payload: message, headers: connection.requestHeaders)
        let hooks = policy.hooks
        // In the order sent, whatever each hook call takes.
        subscriber.calls.run {
            let decision = await hooks.ask(call, at: hook)
            guard case .allow(let grant) = decision else {
                if subscriber.pending.end() { connection.resumeReading() }
                return connection.close(deniedBy: decision)
            }
            hub.publish(grant.payload ?? message, to: channel, publisher: connection.id) { _ in
                if subscriber.pending.end() { connection.resumeReading() }
            }
        }
    }

    func onCloseNow(_ connection: WebSocketConnection, _ cause: CloseCause) {
        guard let subscriber = subscribers.withLock({ $0.removeValue(forKey: connection.id) }) else { return }
        expiring.forget(connection)
        let user = subscriber.identity.withLock { $0 }?.presenceUser
        // A user named by the connect hook is this handler's to forget; one from the upgrade, the server's.
        if let user, user != connection.identity?.presenceUser { users.remove(connection, user: user) }
        if subscriber.announced.withLock({ $0 }) { connection.announceDisconnected(cause, user: user) }
        hub.unsubscribe(subscriber, from: subscriber.channel)
    }
}

extension MsgTransport: ChannelLeaving {
    /// A plain socket is its channel: the server API taking its user off that channel closes it
    /// with 4501.
    func unsubscribe(_ connection: WebSocketConnection, from channel: ChannelName) -> Bool {
        guard subscribers.withLock({ $0[connection.id]?.channel == channel }) else { return false }
        connection.close(.unsubscribedByServer)
        return true
    }
}

/// Delivers a channel's messages to a plain socket as the frames that were published.
final class MsgSubscriber: Subscriber {
    let connection: WebSocketConnection
    let channel: ChannelName
    /// This connection's publishes so far, against the server's publish rate; and, made at the
    /// first publish under one, its namespace's (most channels' namespaces have none).
    private let publishes: Mutex<(server: TokenBucket, namespace: TokenBucket?)>
    /// Its publishes waiting on the store or the publish hook.
    let pending = PendingRequests()
    /// Its publishes waiting on the publish hook, kept in order.
    let calls = OrderedCalls()
    /// Who the client is: its token's, or the connect hook's, user.
    let identity: Mutex<ClientIdentity?>
    /// Frames that came while the connect and subscribe hooks decided.
    let early = EarlyMessages()
    /// Whether its `connected` event was recorded (the hooks let it in), so its end is too.
    let announced = Mutex(false)

    /// - Parameter publishRate: the server's publish rate when the socket opens, which its
    ///   bucket starts full of.
    init(connection: WebSocketConnection, channel: ChannelName, publishRate: TokenBucket.Rate?, identity: ClientIdentity?) {
        self.connection = connection
        self.channel = channel
        self.identity = Mutex(identity)
        self.publishes = Mutex((TokenBucket(full: publishRate ?? TokenBucket.Rate(perSecond: 1, burst: 1)), nil))
    }

    /// Takes a publish from the bucket of each rate given (the server's, the namespace's);
    /// `false` when one is empty.
    func takePublish(_ server: TokenBucket.Rate?, _ namespace: TokenBucket.Rate?) -> Bool {
        publishes.withLock { buckets in
            if let server, !buckets.server.take(server) { return false }
            if let namespace {
                var bucket = buckets.namespace ?? TokenBucket(full: namespace)
                defer { buckets.namespace = bucket }
                guard bucket.take(namespace) else { return false }
            }
            return true
        }
    }

    func receive(_ message: Message) {
        connection.write(message, as: PlainFrame.self)
    }

    func receive(_ event: PresenceEvent) {}

    func lost(_ channel: ChannelName, current: StreamPosition) {
        connection.close(.positionNotRecoverable(current: current))
    }
}
