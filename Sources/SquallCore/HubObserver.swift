// SPDX-License-Identifier: Apache-2.0

/// What a ``Hub`` tells about this node's clients and messages as they happen: what the
/// server's lifecycle events (webhooks) are made of.
///
/// Contracts: ``subscription(_:)`` and ``published(_:)`` are called under the channel's lock, in
/// the channel's order — each must only queue (never wait, never call the hub). Every local join and leave is told, unmerged (unlike
/// presence events), and every message that joins this node's log.
public protocol HubObserver: Sendable {
    /// A subscriber of this node joined (`.join`) or left (`.leave`) a channel.
    func subscription(_ change: PresenceChange)
    /// A message joined this node's log of its channel (published here or, with a shared
    /// store, on another node).
    func published(_ message: Message)
    /// A publish was answered `after` it was asked: in the log (with a store, committed), or
    /// refused. Called once per publish, as its publisher is answered — not under a lock.
    func acknowledged(_ result: Result<Message, PublishError>, after: Duration)
}

extension HubObserver {
    public func acknowledged(_ result: Result<Message, PublishError>, after: Duration) {}
}
