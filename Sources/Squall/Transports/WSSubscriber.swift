// SPDX-License-Identifier: Apache-2.0

import Foundation
import SquallCore
import Synchronization

/// Delivers a channel's messages and presence events to a `/ws` client as JSON.
final class WSSubscriber: Subscriber {
    let connection: WebSocketConnection
    /// The channels this client is subscribed to (or whose subscribe is on its way), each with
    /// the number of its latest subscribe: a subscribe's answer may come from the store's
    /// thread while later requests are handled.
    let channels = Mutex<[ChannelName: UInt64]>([:])
    private let attempts = Atomic<UInt64>(0)
    /// This connection's publishes so far, against the publish rate.
    let publishes: Mutex<TokenBucket>
    /// Its subscribes and unsubscribes so far, against the subscribe rate.
    let subscriptions: Mutex<TokenBucket>
    /// Its requests waiting on the store or the backend's hooks.
    let pending = PendingRequests()
    /// Its publishes waiting on the publish hook, kept in order.
    let calls = OrderedCalls()
    /// Requests that came while the connect hook decided.
    let early = EarlyMessages()
    /// Whether its `connected` event was recorded (it was welcomed), so its end is too.
    let announced = Mutex(false)
    /// Who the client is: the token of its upgrade, `connect` or latest `refresh`.
    let identity: Mutex<ClientIdentity?>
    /// Whether it may make requests: it had a token, or tokens were optional, when it connected.
    let connected: Mutex<Bool>
    /// When the subscription token of each private channel it is subscribed to expires.
    let subscriptionExpiries = Mutex<[ChannelName: Date]>([:])
    /// Its publishes per namespace with a publish rate of its own (as many as namespaces).
    private let namespacePublishes = Mutex<[String: TokenBucket]>([:])

    /// Takes a publish from namespace `name`'s bucket: `nil` when there was one, else how long
    /// until there is.
    func takeNamespacePublish(_ name: String, _ limit: RateLimit) -> Duration? {
        let rate = limit.bucketRate
        return namespacePublishes.withLock { buckets in
            var bucket = buckets[name] ?? TokenBucket(full: rate)
            defer { buckets[name] = bucket }
            return bucket.take(rate) ? nil : bucket.waitTime(rate)
        }
    }

    /// A number for a subscribe, larger than any before it.
    func nextAttempt() -> UInt64 {
        attempts.add(1, ordering: .relaxed).newValue
    }

    init(connection: WebSocketConnection, publishRate: TokenBucket.Rate?, subscribeRate: TokenBucket.Rate?, identity: ClientIdentity?, connected: Bool) {
        self.connection = connection
        self.identity = Mutex(identity)
        self.connected = Mutex(connected)
        self.publishes = Mutex(TokenBucket(full: publishRate ?? TokenBucket.Rate(perSecond: 1, burst: 1)))
        self.subscriptions = Mutex(TokenBucket(full: subscribeRate ?? TokenBucket.Rate(perSecond: 1, burst: 1)))
    }

    /// Takes a token from `bucket` (``publishes`` or ``subscriptions``): `nil` when there was
    /// one, else how long until there is.
    static func take(from bucket: borrowing Mutex<TokenBucket>, _ limit: RateLimit) -> Duration? {
        let rate = limit.bucketRate
        return bucket.withLock { bucket in bucket.take(rate) ? nil : bucket.waitTime(rate) }
    }

    func receive(_ message: Message) {
        connection.write(message, as: EnvelopeFrame.self)
    }

    func receive(_ event: PresenceEvent) {
        connection.writeFrame(event.encoded(PresenceFrame.self))
    }

    func lost(_ channel: ChannelName, current: StreamPosition) {
        connection.close(.logRestarted)
    }
}
