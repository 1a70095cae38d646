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
final class MsgTransport: NonBlockingWebSocketHandler {
    /// Channel `msg` for `/msg`; `nil` to take the `{channel}` path parameter.
    let fixedChannel: String?
    let hub: Hub
    let maxInfo: RawJSON.Limits
    /// How fast one connection may publish; `nil` when unlimited.
    let publishRate: TokenBucket.Rate?
    private let subscribers = Mutex<[UUID: MsgSubscriber]>([:])

    init(channel: String?, hub: Hub, maxInfo: RawJSON.Limits, publishRate: TokenBucket.Rate?) {
        self.fixedChannel = channel
        self.hub = hub
        self.maxInfo = maxInfo
        self.publishRate = publishRate
    }

    func openNow(_ connection: WebSocketConnection) throws {
        let target = try ChannelTarget(
            channel: fixedChannel ?? connection.parameters.get("channel"),
            query: connection.uri.queryParameters,
            maxInfo: maxInfo
        )
        let subscriber = MsgSubscriber(connection: connection, channel: target.channel, publishRate: publishRate)
        subscribers.withLock { $0[connection.id] = subscriber }
        // Frames the client sends meanwhile are published after this subscription: the hub
        // keeps a channel's operations in order while its log is read from the store.
        hub.subscribe(subscriber, to: target.channel, from: target.since, member: target.member(connection.id, transport: "msg")) { result in
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
        if let publishRate, !subscriber.publishes.withLock({ $0.take(publishRate) }) {
            // A bare frame has no reply: a client that has used up its burst is told by the close.
            return connection.close(.publishRateExceeded)
        }
        // /msg has no acknowledgements: a message the store could not keep is not broadcast.
        if subscriber.pending.begin() { connection.holdReading() }
        hub.publish(message, to: subscriber.channel, publisher: connection.id) { _ in
            if subscriber.pending.end() { connection.resumeReading() }
        }
    }

    func onCloseNow(_ connection: WebSocketConnection, _ cause: CloseCause) {
        guard let subscriber = subscribers.withLock({ $0.removeValue(forKey: connection.id) }) else { return }
        hub.unsubscribe(subscriber, from: subscriber.channel)
    }
}

/// Delivers a channel's messages to a plain socket as the frames that were published.
final class MsgSubscriber: Subscriber {
    let connection: WebSocketConnection
    let channel: ChannelName
    /// This connection's publishes so far, against the publish rate.
    let publishes: Mutex<TokenBucket>
    /// Its publishes waiting on the store.
    let pending = PendingRequests()

    init(connection: WebSocketConnection, channel: ChannelName, publishRate: TokenBucket.Rate?) {
        self.connection = connection
        self.channel = channel
        self.publishes = Mutex(TokenBucket(full: publishRate ?? TokenBucket.Rate(perSecond: 1, burst: 1)))
    }

    func receive(_ message: Message) {
        connection.write(message, as: PlainFrame.self)
    }

    func receive(_ event: PresenceEvent) {}

    func lost(_ channel: ChannelName, current: StreamPosition) {
        connection.close(.positionNotRecoverable(current: current))
    }
}
