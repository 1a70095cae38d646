// SPDX-License-Identifier: Apache-2.0

/// A log store that several nodes share, such as one PostgreSQL database: the store, not the
/// hub, gives each message its position, so a channel has one order and one epoch on every
/// node. With a ``LogBroker`` (which tells each node's hub when a log grew) and a
/// ``PresenceRegistry`` (who is subscribed on which node) it makes nodes one system
/// (``LogStorage/shared(_:broker:presence:)``).
///
/// Contracts:
/// - **Positions come from the store.** ``append(_:idempotencyKey:committed:)`` takes a message
///   without one; `committed` gets the position the store gave it. Offsets grow by one per
///   message in a channel's epoch, across all nodes, and survive any node's restart.
/// - **One way in.** The hub adds a message to its log only in offset order: its own commits
///   when they are next, and everything else by ``read(_:after:limit:retention:)`` — the
///   catch-up read it makes when a commit or the broker shows its log is behind. A lost
///   notification therefore costs latency, never a message.
/// - **Reads create nothing.** ``open(_:retention:)`` and ``read(_:after:limit:retention:)``
///   only read: a channel never published to leaves nothing in the store, whoever looks at it.
///   Its epoch is made by its first append.
/// - **Retention is the store's.** It deletes by count and age across all nodes, never because
///   one node's window let a message go (a node's byte bound counts its own copies), and forgets
///   a channel whose last message is older than ``Retention/metaTTL``.
/// - **Acknowledge after commit.** As for ``LogStore``: `committed(.success)` only once the
///   message is durable; `.failure` means no node will ever see it.
/// - **Idempotency.** A key the store already holds for the channel (published on any node within
///   `IdempotencyWindow/duration`) appends nothing: `committed` gets the first message's
///   position, with ``Appended/isNew`` false, and says whether the payloads differ.
/// - **Nothing blocks.** Reads suspend their caller; appends queue.
public protocol SharedLog: Sendable {
    /// The logs of `channels` as the store has them: each one's epoch, last offset and newest
    /// messages (at most `retention.maxMessages`, none older than `retention.maxAge`), oldest
    /// first; none for a channel the store holds nothing for.
    func open(_ channels: [ChannelName], retention: Retention) async throws(StoreError) -> [ChannelName: StoredLog]

    /// Stores a message on `channel` and calls `committed` with the position it was given, or with
    /// the error that stopped it. Must not block, and never calls `committed` before it returns.
    /// - Throws: at once, when the store cannot take the message (closed, or too much already
    ///   waiting): `committed` is never called.
    func append(
        _ draft: Draft,
        idempotencyKey: IdempotencyKey?,
        committed: @escaping @Sendable (Result<Appended, StoreError>) -> Void
    ) throws(StoreError)

    /// Up to `limit` messages of `channel` after `position`, oldest first, or — when the store no
    /// longer has every message after it (another epoch, past retention, or a channel it has
    /// forgotten) — the log to start again from, as ``open(_:retention:)`` gives it. A position
    /// of an unpublished channel (``StreamPosition/unpublished(at:)``) reads from the first
    /// message of whatever epoch the store has.
    func read(
        _ channel: ChannelName,
        after position: StreamPosition,
        limit: Int,
        retention: Retention
    ) async throws(StoreError) -> CatchUp

    /// Deletes `channel`'s messages, keeping its position, and has the broker tell every node
    /// (``LogFollower/historyRemoved(_:through:)``).
    /// - Returns: the position removed through; `nil` for a channel the store holds nothing for.
    func removeHistory(_ channel: ChannelName) async throws(StoreError) -> StreamPosition?

    /// Commits what is queued, calls every `committed` still owed, and stops.
    func close() async
    /// Tells `observer` of every commit from now on (a default does nothing).
    func observe(_ observer: any StoreObserver)
}

/// A store that is all three parts of a shared log — PostgreSQL's.
public typealias SharedLogStore = SharedLog & LogBroker & PresenceRegistry

extension SharedLog {
    /// Tells `observer` of every commit from now on; a store that keeps no such figures ignores it.
    public func observe(_ observer: any StoreObserver) {}
}
