// SPDX-License-Identifier: Apache-2.0

import Foundation
import Synchronization

/// The heart of Squall: every channel's log, its subscribers and its presence.
///
/// Every transport publishes and reads through one hub, so a message published over any of them
/// reaches subscribers on all of them, in the same order. Contracts:
/// - **Order.** Appending a message and handing it to the channel's subscribers happen under the
///   channel's lock: subscribers receive a channel's messages in offset order, with no gaps.
/// - **Resume.** ``subscribe(_:to:from:member:presenceEvents:completion:)`` replays the messages
///   after the given position and registers the subscriber in one step: nothing published
///   meanwhile is lost or delivered twice. A position that cannot be resumed is reported, never
///   papered over.
/// - **Nothing waits on a store holding a thread.** A channel's log is read from its store
///   when the channel is first used (``ChannelOpener``): whatever arrives meanwhile — publishes,
///   subscribes, reads, unsubscribes — parks on the channel, in order, and runs once the log
///   is here; if it cannot be had in time, each is told `store_unavailable` and the channel is
///   not kept. Without a store a channel is open at once.
/// - **Bounded.** Logs keep at most their ``Retention``; a channel with nothing retained, parked
///   or listening is forgotten by ``sweep()`` (its next log has a new epoch, or is restored).
///   Reads take a ``ReadBudget``, so a reply is bounded by bytes as well as by count.
/// - **Per-channel work.** Channels live in ``shardCount`` shards, each behind its own lock:
///   finding a channel locks one shard for a lookup, a sweep locks one shard at a time, and the
///   counts `/healthz` reports are kept as they change, never computed over every channel.
/// - **A waiting poll is a parked continuation**, woken by the next append; no task runs for
///   it while it waits.
///
/// The hub's work is cut by concern: publishing (`Hub+Publishing`), subscribing and reading
/// (`Hub+Reading`), presence (`Hub+Presence`), catching up with a shared store
/// (`Hub+CatchUp`) and sweeping (`Hub+Sweeping`).
public final class Hub: Sendable {
    /// How many independently locked parts the channel table has.
    public static let shardCount = 64

    /// The store's retention: the most any channel keeps.
    let retention: Retention
    /// Each channel's own, within ``retention`` (its namespace's).
    private let retentionOf: @Sendable (ChannelName) -> Retention
    let storage: LogStorage
    let idempotency: IdempotencyWindow
    let now: @Sendable () -> Date
    /// How long presence changes gather before they reach watchers (``PresenceTurn``).
    let presenceTurn: Duration
    private let shards: [Shard]
    let opener: ChannelOpener?
    let channelTotal = Atomic<Int>(0)
    let waiterTotal = Atomic<Int>(0)
    let messageTotal = Atomic<Int>(0)
    let deliveryTotal = Atomic<Int>(0)
    let deliveredByteTotal = Atomic<Int>(0)
    /// Told of this node's subscribes, unsubscribes and messages: the server's lifecycle events.
    let observer: (any HubObserver)?

    /// A hub whose logs live in `storage` and keep `retention`.
    /// - Parameters:
    ///   - idempotency: how long and how many idempotency keys each channel remembers.
    ///   - opening: how many channels' logs are read from the store at once, and how long a
    ///     request waits for one.
    ///   - presenceTurn: how long presence changes gather before watchers hear of them, merged
    ///     per member. Default 50 ms.
    ///   - now: the clock messages are stamped with.
    ///   - retentionOf: a channel's own retention, within `retention` (which a store keeps); it
    ///     is asked when the channel's log opens. Default `retention` for every channel.
    ///   - observer: told of this node's subscribes, unsubscribes and messages.
    public init(
        retention: Retention = Retention(),
        storage: LogStorage = .memory,
        idempotency: IdempotencyWindow = IdempotencyWindow(),
        opening: OpeningLimits = OpeningLimits(),
        presenceTurn: Duration = .milliseconds(50),
        now: @escaping @Sendable () -> Date = { Date() },
        retentionOf: (@Sendable (ChannelName) -> Retention)? = nil,
        observer: (any HubObserver)? = nil
    ) {
        self.observer = observer
        self.retention = retention
        self.retentionOf = retentionOf ?? { _ in retention }
        self.storage = storage
        self.idempotency = idempotency
        self.presenceTurn = presenceTurn
        self.now = now
        self.shards = (0..<Self.shardCount).map { _ in Shard() }
        switch storage {
        case .memory:
            opener = nil
        case .local(let store):
            opener = ChannelOpener(limits: opening) { [retention] channels throws(StoreError) in try await store.restore(channels, retention: retention) }
        case .shared(let log, let broker, let presence):
            opener = ChannelOpener(limits: opening) { [retention] channels throws(StoreError) in try await log.open(channels, retention: retention) }
            broker.follow(self)
            presence.follow(self)
        }
    }

    /// A hub on one node's `store`.
    public convenience init(retention: Retention = Retention(), store: any LogStore, idempotency: IdempotencyWindow = IdempotencyWindow()) {
        self.init(retention: retention, storage: .local(store), idempotency: idempotency)
    }

    /// A hub that is one node of several sharing `store`.
    public convenience init(retention: Retention = Retention(), shared store: any SharedLogStore, idempotency: IdempotencyWindow = IdempotencyWindow()) {
        self.init(retention: retention, storage: .shared(store), idempotency: idempotency)
    }

    /// `channel`'s retention: its own, never more than the store's.
    func retention(of channel: ChannelName) -> Retention {
        let own = retentionOf(channel)
        return Retention(
            maxMessages: min(own.maxMessages, retention.maxMessages), maxAge: min(own.maxAge, retention.maxAge),
            maxBytes: min(own.maxBytes, retention.maxBytes), metaTTL: retention.metaTTL)
    }

    /// How many waiting polls are parked across all channels.
    public var waitingPolls: Int { waiterTotal.load(ordering: .relaxed) }

    /// How many messages have joined the logs this hub holds (published here, or — from a
    /// shared store — on another node), since it started.
    public var messageCount: Int { messageTotal.load(ordering: .relaxed) }

    /// How many times a message has been handed to one of this hub's subscribers, since it
    /// started: counted per message (its audience's size), never per delivery.
    public var deliveryCount: Int { deliveryTotal.load(ordering: .relaxed) }

    /// The payload bytes of those deliveries — each message's size times its audience, before
    /// framing and compression — since it started: counted per message, never per delivery.
    public var deliveredByteCount: Int { deliveredByteTotal.load(ordering: .relaxed) }

    /// How many channels the hub holds now, opening ones included.
    public var channelCount: Int { channelTotal.load(ordering: .relaxed) }

    // MARK: - Channels

    /// One part of the channel table, behind its own lock.
    final class Shard: Sendable {
        let channels = Mutex<[ChannelName: ChannelState]>([:])

        func withLock<T>(_ body: (inout [ChannelName: ChannelState]) -> T) -> T {
            channels.withLock { body(&$0) }
        }
    }

    func shard(_ channel: ChannelName) -> Shard {
        shards[Int(UInt(bitPattern: channel.hashValue) % UInt(Self.shardCount))]
    }

    var allShards: [Shard] { shards }

    /// `channel`'s state, made if it has none: open at once without a store, else opening (its
    /// log asked of the store).
    private func state(of channel: ChannelName) -> ChannelState {
        let shard = shard(channel)
        if let found = shard.withLock({ $0[channel] }) { return found }
        let (state, isNew) = shard.withLock { channels -> (ChannelState, Bool) in
            if let state = channels[channel] { return (state, false) }
            let state =
                opener == nil
                ? ChannelState(
                    log: ChannelLog(channel: channel, retention: retention(of: channel)), recent: RecentPublishes(window: idempotency), opening: false)
                : ChannelState(
                    log: ChannelLog(channel: channel, retention: retention(of: channel), stored: nil, followsStore: false, now: now()),
                    recent: RecentPublishes(window: idempotency),
                    opening: true
                )
            channels[channel] = state
            channelTotal.add(1, ordering: .relaxed)
            return (state, true)
        }
        if isNew, let opener {
            opener.open(channel) { result in self.opened(channel, state, result) }
        }
        return state
    }

    /// Runs `body` on `channel`'s state, locked, if its log is open, making the channel if it
    /// has none; `nil` when the log is still being read (then ``whenOpen(_:_:failed:)``).
    func withOpenChannel<T>(_ channel: ChannelName, _ body: (inout ChannelState.Locked) -> T) -> T? {
        while true {
            let state = state(of: channel)
            // A sweep or a failed opening may have retired the state since it was looked up.
            let result: T?? = state.lock.withLock { locked in
                if locked.retired { return nil }
                if locked.opening != nil { return .some(nil) }
                return .some(body(&locked))
            }
            if let result { return result }
        }
    }

    /// Runs `run` on `channel`'s state once its log is open — now, if it already is — after
    /// everything parked on it before; `failed` instead if the log cannot be had.
    func whenOpen(
        _ channel: ChannelName, _ run: @escaping @Sendable (inout ChannelState.Locked) -> AfterUnlock?, failed: @escaping @Sendable (StoreError) -> Void
    ) {
        let operation = ParkedOperation(run: run, fail: failed)
        while true {
            let state = state(of: channel)
            enum Outcome {
                case retired
                case parked
                case ran(AfterUnlock?)
            }
            let outcome = state.lock.withLock { locked -> Outcome in
                if locked.retired { return .retired }
                if var parked = locked.opening.take() {
                    parked.append(operation)
                    locked.opening = parked
                    return .parked
                }
                return .ran(run(&locked))
            }
            switch outcome {
            case .retired: continue
            case .parked: return
            case .ran(let after):
                after?()
                return
            }
        }
    }

    /// Whether a request on `channel` now would read its log from the store: there is one, and
    /// the channel is not in memory. Transports charge such requests to a rate, so that nobody
    /// can keep the store's reads (``OpeningLimits``) to themselves by asking for new names.
    public func opensFromStore(_ channel: ChannelName) -> Bool {
        opener != nil && shard(channel).withLock { $0[channel] == nil }
    }

    /// Runs `body` on `channel`'s state if the channel exists and is open; `nil` if not.
    func withExistingChannel<T>(_ channel: ChannelName, _ body: (inout ChannelState.Locked) -> T) -> T? {
        guard let state = shard(channel).withLock({ $0[channel] }) else { return nil }
        return state.lock.withLock { locked in locked.retired || locked.opening != nil ? nil : body(&locked) }
    }

    /// The store answered `channel`'s opening: the log takes what it kept and the operations
    /// parked meanwhile run, in order; or they are told why not, and the channel goes.
    private func opened(_ channel: ChannelName, _ state: ChannelState, _ result: Result<StoredLog?, StoreError>) {
        let time = now()
        let (afters, failed): ([AfterUnlock], (parked: [ParkedOperation], error: StoreError)?) = state.lock.withLock { locked in
            guard let parked = locked.opening.take() else { return ([], nil) }
            switch result {
            case .failure(let error):
                locked.retired = true
                return ([], (Array(parked), error))
            case .success(let stored):
                locked.log = ChannelLog(channel: channel, retention: retention(of: channel), stored: stored, followsStore: isShared, now: time)
                locked.recent = RecentPublishes(window: idempotency, restoring: stored, now: time)
                return (parked.compactMap { $0.run(&locked) }, nil)
            }
        }
        if let failed {
            forget(channel, state)
            for operation in failed.parked { operation.fail(failed.error) }
            return
        }
        if isShared { Task { await self.loadMembers(of: channel) } }
        for after in afters { after() }
    }

    /// Takes `state` out of the table if it is still `channel`'s.
    func forget(_ channel: ChannelName, _ state: ChannelState) {
        let removed = shard(channel).withLock { channels -> Bool in
            guard channels[channel] === state else { return false }
            channels[channel] = nil
            return true
        }
        if removed { channelTotal.subtract(1, ordering: .relaxed) }
    }

    /// Whether positions come from a store several nodes share.
    var isShared: Bool {
        if case .shared = storage { return true }
        return false
    }

    /// The presence registry of a shared store, if any.
    var registry: (any PresenceRegistry)? {
        if case .shared(_, _, let presence) = storage { return presence }
        return nil
    }
}
