// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore

/// Something that happened to a client or a channel, as a webhook reports it: its id (the
/// `webhook-id` receivers deduplicate by), its type (`connected`, `disconnected`, `subscribed`,
/// `unsubscribed`, `published`, `presence_expired`), when, the namespace it concerns (for
/// filters) and its JSON body, written once.
///
/// The body is the Standard Webhooks shape: `{"data": {…}, "timestamp": "…", "type": "…"}`.
public struct LifecycleEvent: Sendable, Hashable {
    public let id: UUID
    public let type: String
    public let time: Date
    /// The namespace of the event's channel (`""` for the default one); `nil` for an event of
    /// no channel (a connection's).
    public let namespace: String?
    /// The JSON body receivers get.
    public let body: ByteBuffer

    public init(id: UUID, type: String, time: Date, namespace: String?, body: ByteBuffer) {
        self.id = id
        self.type = type
        self.time = time
        self.namespace = namespace
        self.body = body
    }

    /// An event of `type` with `data` (a JSON object), its body written here.
    public init(id: UUID = .random(), type: String, time: Date = Date(), namespace: String?, data: ByteBuffer) {
        var body = JSONText.Object(capacity: data.readableBytes + 96)
        body.raw("data", json: data)
        body.string("timestamp", Self.timestamp(time))
        body.string("type", type)
        self.init(id: id, type: type, time: time, namespace: namespace, body: body.finish())
    }

    /// `2026-12-07T10:57:04.123Z`: RFC 3339 in UTC, milliseconds.
    public static func timestamp(_ time: Date) -> String {
        time.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}

/// One event waiting in an ``EventOutbox``: how often delivery was tried, and the receivers
/// (by URL) that have it already.
public struct OutboxEntry: Sendable, Hashable {
    public let event: LifecycleEvent
    public let attempts: Int
    public let deliveredTo: Set<String>

    public init(event: LifecycleEvent, attempts: Int, deliveredTo: Set<String>) {
        self.event = event
        self.attempts = attempts
        self.deliveredTo = deliveredTo
    }
}

/// Where lifecycle events wait until every receiver has them: a durable store's table (SQLite,
/// PostgreSQL), or memory.
///
/// Contracts:
/// - **Recorded with the change.** ``record(_:)`` queues events for the store's writer, which
///   commits them with what it commits next; a store that records `published` events does so in
///   the transaction that commits the message (``recordPublished(_:)``).
/// - **Nothing blocks.** Recording queues and returns; reads and updates suspend their caller.
/// - **Bounded.** Past the store's bound new events are refused (``record(_:)`` throws), never
///   the queue grown; what is refused is counted by the caller.
/// - **Delivered by one node.** ``due(limit:lease:)`` leases what it returns: no other caller
///   gets an event until its lease runs out or it is settled.
public protocol EventOutbox: Sendable {
    /// Whether events survive a restart (a store), or are kept at most once in memory.
    var isDurable: Bool { get }
    /// Queues `events`; an event whose id is already there is kept once.
    /// - Throws: when the outbox holds as many as it may: none of them was queued.
    func record(_ events: [LifecycleEvent]) throws(StoreError)
    /// From now on every message the store commits is recorded, in its transaction, as the
    /// event `event` makes of it (`nil`: none for that message).
    func recordPublished(_ event: @escaping @Sendable (Message) -> LifecycleEvent?)
    /// Up to `limit` events whose next attempt is due, each leased for `lease`.
    func due(limit: Int, lease: Duration) async throws(StoreError) -> [OutboxEntry]
    /// `id` reached every receiver: it goes.
    func delivered(_ id: UUID) async throws(StoreError)
    /// `id` did not reach every receiver: try again at `retryAt`, skipping `deliveredTo`.
    func retry(_ id: UUID, deliveredTo: Set<String>, at retryAt: Date) async throws(StoreError)
    /// `id` ran out of retries: it moves to the dead letters (a durable store keeps them, for an
    /// operator to read), with `reason`.
    func deadLetter(_ id: UUID, reason: String) async throws(StoreError)
    /// How many events wait.
    func depth() async -> Int
    /// From now on, when a node of a shared store stops answering, whoever notices first
    /// records a `presence_expired` event per channel its members were on (of `namespaces`, or
    /// every channel when `nil`). A store of one node has no other node to notice.
    func recordExpiredPresence(namespaces: Set<String>?)
    /// Events the store accepted and then lost (a failed commit) or did not record for want of
    /// room (a message's `published` event), so far.
    var droppedEvents: Int { get }
}

extension EventOutbox {
    public func recordExpiredPresence(namespaces: Set<String>?) {}
    public var droppedEvents: Int { 0 }
}
