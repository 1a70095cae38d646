// SPDX-License-Identifier: Apache-2.0

/// Something that receives a channel's messages as they are published: a client on a
/// WebSocket route or an SSE stream (polling clients read the log instead). A WebSocket
/// subscriber writes to its socket's queue, counted by an ``OutboxAccount``; an SSE subscriber
/// queues in an ``Outbox`` that its stream's task drains.
///
/// The hub calls these methods with the channel locked, so that every subscriber sees a
/// channel's messages in log order. They must only queue (never wait, never call the hub).
public protocol Subscriber: AnyObject, Sendable {
    /// A message was published to a channel this subscriber is on.
    func receive(_ message: Message)
    /// Someone joined or left a channel this subscriber watches presence on. The event is the
    /// same object for every watcher: encode it with ``PresenceEvent/encoded(_:)``.
    func receive(_ event: PresenceEvent)
    /// The channel's log started again from a shared store's (this node had fallen behind
    /// past what the store retains, or the store forgot the channel), so this subscriber may
    /// have missed messages: it is no longer subscribed, and should tell its client, which
    /// resumes and learns whether its position is recoverable. `current` is the log's position
    /// now.
    func lost(_ channel: ChannelName, current: StreamPosition)
}
