// SPDX-License-Identifier: Apache-2.0

/// Where a ``Hub`` keeps its channels' logs beyond memory, on one node: a store that makes every
/// message durable before anyone sees it, and gives a channel's log back after a restart.
///
/// The hub keeps each channel's retained window in memory as always (history, resume and polls
/// read it there); a store is what that window is restored from and committed to. Without one
/// (``LogStorage/memory``, the default) logs live in memory only and a restart forgets them.
///
/// Contracts:
/// - **Order.** The hub calls ``append(_:idempotencyKey:committed:)`` under the channel's lock, so a channel's
///   messages arrive in offset order; the store calls `committed` for them in that same order
///   (messages of different channels may commit together, in one transaction).
/// - **Acknowledge after commit.** `committed(nil)` means the message survives a crash of the
///   process (or more, as the store documents); only then does the hub hand it to subscribers
///   and acknowledge it to its publisher. `committed(error)` means it was not stored: the hub
///   tells the publisher (`store_unavailable`) and no subscriber ever sees it.
/// - **Restore without holding a thread.** ``restore(_:retention:)`` returns what an earlier
///   run committed for some channels, reading on the store's own threads while its caller is
///   suspended: each channel's epoch, its last offset (which the next append continues from,
///   even when retention has dropped every message) and its newest messages, oldest first. A
///   channel it holds nothing for is absent from the answer: its log is unpublished.
/// - **Idempotency.** A restored log gives back the keys its messages were published under,
///   so that a retry after a restart is still recognised while its message is retained.
/// - **Retention.** ``trim(_:epoch:through:)`` says that the hub no longer retains a channel's
///   messages up to an offset; the store may delete them whenever it likes, in small batches
///   that do not hold up commits. The store also deletes, by itself and whether or not a
///   channel is open, messages past ``Retention/maxAge`` and channels whose last message is
///   older than ``Retention/metaTTL``, rows and all: a channel nobody publishes to leaves
///   nothing behind.
public protocol LogStore: Sendable {
    /// What was committed for `channels`: each one's log (at most `retention.maxMessages`
    /// messages, none older than `retention.maxAge`), or none for a channel the store holds
    /// nothing for. Never creates anything.
    func restore(_ channels: [ChannelName], retention: Retention) async throws(StoreError) -> [ChannelName: StoredLog]

    /// Stores `message` (its position assigned by the hub: the next offset of its epoch), with
    /// the idempotency key it was published under if any, and calls `committed` once it is
    /// durable, or with the error that stopped it. Must not block: it queues the message for
    /// the store's own writer, and never calls `committed` before it returns (the hub holds the
    /// channel's lock, which `committed` takes).
    /// - Throws: at once, when the store cannot take the message (closed, or too much already
    ///   waiting): nothing was queued, `committed` is never called, and the hub gives the
    ///   position to the next message, so a refusal leaves no gap and ends no epoch.
    func append(
        _ message: Message,
        idempotencyKey: IdempotencyKey?,
        committed: @escaping @Sendable (StoreError?) -> Void
    ) throws(StoreError)

    /// The hub retains none of `channel`'s messages of `epoch` up to `offset` any longer.
    func trim(_ channel: ChannelName, epoch: String, through offset: UInt64)

    /// Commits what is queued, calls every `committed` still owed, and stops: a later append
    /// fails at once. Returns once the store has let go of its resources; calling it again
    /// returns at once. ``SquallServer`` calls it when it has stopped serving.
    func close() async
    /// Tells `observer` of every commit from now on (a default does nothing).
    func observe(_ observer: any StoreObserver)
}

extension LogStore {
    /// Tells `observer` of every commit from now on; a store that keeps no such figures ignores it.
    public func observe(_ observer: any StoreObserver) {}
}
