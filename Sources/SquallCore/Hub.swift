import Foundation
import Synchronization

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
    /// Someone joined or left a channel this subscriber watches presence on.
    func receive(_ event: PresenceEvent)
    /// The channel's log started again from a shared store's (this node had fallen behind
    /// past what the store retains, or opened the channel while the store was unreachable),
    /// so this subscriber may have missed messages: it is no longer subscribed, and should tell
    /// its client, which resumes and learns whether its position is recoverable. `current` is
    /// the log's position now.
    func lost(_ channel: ChannelName, current: StreamPosition)
}

/// What a client learns when it subscribes.
public struct Subscription: Sendable, Hashable {
    /// The channel.
    public let channel: ChannelName
    /// The channel's position at the moment of subscribing: the replay ends here and live
    /// messages continue from here.
    public let position: StreamPosition
    /// `true` if the client asked to resume and every message after its position is being
    /// replayed; `false` if it asked and its position could not be resumed (another epoch, or
    /// older than retention): it gets live messages only and should reload. `nil` if it did
    /// not ask.
    public let recovered: Bool?
    /// How many messages are replayed after the subscription.
    public let replayed: Int
}

/// A slice of a channel's log, as history and polls return it.
public struct History: Sendable {
    /// The channel.
    public let channel: ChannelName
    /// Messages, oldest first.
    public let messages: [Message]
    /// Where to continue from: the last message returned, or the channel's current position
    /// when none was.
    public let position: StreamPosition
    /// `false` when the requested position could not be resumed (another epoch, or older than
    /// retention): `messages` is then empty and `position` is the channel's current one.
    public let recovered: Bool
}

/// One page of a channel's presence, ordered by id.
public struct PresencePage: Sendable {
    /// The channel.
    public let channel: ChannelName
    /// Members, ordered by id.
    public let members: [PresenceMember]
    /// When more members follow: the last id of this page, to ask for the next page after.
    public let next: UUID?
}

/// The heart of Squall: every channel's log, its subscribers and its presence.
///
/// Every transport publishes and reads through one hub, so a message published over any of them
/// reaches subscribers on all of them, in the same order. Contracts:
/// - **Order.** Appending a message and handing it to the channel's subscribers happen under the
///   channel's lock: subscribers receive a channel's messages in offset order, with no gaps.
/// - **Resume.** ``subscribe(_:to:from:member:presenceEvents:onSubscribed:)`` replays the messages
///   after the given position and registers the subscriber in one step: nothing published
///   meanwhile is lost or delivered twice. A position that cannot be resumed is reported, never
///   papered over.
/// - **Bounded.** Logs keep at most their ``Retention``; a channel with no messages left, no
///   subscribers and no waiting polls is forgotten by ``sweep()`` (its next log has a new epoch).
///   Reads take a ``ReadBudget``, so a reply is bounded by bytes as well as by count.
/// - **Per-channel work.** Channels live in ``shardCount`` shards, each behind its own lock:
///   finding a channel locks one shard for a lookup, a sweep locks one shard at a time, and the
///   counts `/healthz` reports are kept as they change, never computed over every channel.
/// - **A waiting poll is a parked continuation**, woken by the next append; no task runs for
///   it while it waits.
public final class Hub: Sendable {
    /// How many independently locked parts the channel table has.
    public static let shardCount = 64

    private let retention: Retention
    private let store: (any LogStore)?
    private let shared: (any SharedLogStore)?
    private let idempotency: IdempotencyWindow
    private let now: @Sendable () -> Date
    private let shards: [Shard]
    private let channelTotal = Atomic<Int>(0)
    private let waiterTotal = Atomic<Int>(0)

    /// A hub whose logs keep `retention`. `now` is the clock messages are stamped with.
    /// - Parameters:
    ///   - store: where logs are committed and restored from; `nil` (the default) keeps them
    ///     in memory only.
    ///   - idempotency: how long and how many idempotency keys each channel remembers.
    public convenience init(
        retention: Retention = Retention(),
        store: (any LogStore)? = nil,
        idempotency: IdempotencyWindow = IdempotencyWindow(),
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.init(retention: retention, store: store, shared: nil, idempotency: idempotency, now: now)
    }

    /// A hub that is one node of several sharing `store`: positions come from the store, and
    /// messages published on other nodes reach this hub's subscribers through it, in the same
    /// order (``SharedLogStore``).
    public convenience init(
        retention: Retention = Retention(),
        shared store: any SharedLogStore,
        idempotency: IdempotencyWindow = IdempotencyWindow(),
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.init(retention: retention, store: nil, shared: store, idempotency: idempotency, now: now)
        store.follow(self)
    }

    private init(
        retention: Retention,
        store: (any LogStore)?,
        shared: (any SharedLogStore)?,
        idempotency: IdempotencyWindow,
        now: @escaping @Sendable () -> Date
    ) {
        self.retention = retention
        self.store = store
        self.shared = shared
        self.idempotency = idempotency
        self.now = now
        self.shards = (0..<Self.shardCount).map { _ in Shard() }
    }

    /// Most messages one catch-up read asks a shared store for.
    static let catchUpPage = 500

    /// One part of the channel table, behind its own lock.
    private final class Shard: Sendable {
        let channels = Mutex<[ChannelName: ChannelState]>([:])

        func withLock<T>(_ body: (inout [ChannelName: ChannelState]) -> T) -> T {
            channels.withLock { body(&$0) }
        }
    }

    private func shard(_ channel: ChannelName) -> Shard {
        shards[Int(UInt(bitPattern: channel.hashValue) % UInt(Self.shardCount))]
    }

    /// Appends `payload` to `channel`'s log and hands it to every subscriber, then calls
    /// `acknowledged` with the message; with a store, all of that once the store has committed
    /// it, and `acknowledged` gets the store's error instead if it could not.
    ///
    /// With an `idempotencyKey` seen on this channel within the ``IdempotencyWindow``, nothing
    /// is appended: `acknowledged` gets the message the key first published (its payload
    /// empty), or that publish's outcome once the store gives it.
    ///
    /// Without a store it all happens before this returns. With one, `acknowledged` runs on the
    /// store's writer thread: it must only queue (a reply to the publisher, a continuation).
    public func publish(
        _ payload: Payload,
        to channel: ChannelName,
        publisher: UUID? = nil,
        idempotencyKey: IdempotencyKey? = nil,
        acknowledged: @escaping @Sendable (Result<Message, StoreError>) -> Void
    ) {
        let time = now()
        typealias Answer = (outcome: Result<Message, StoreError>, retries: [RecentPublishes.Callback])
        if let shared {
            let answer = withChannel(channel) { state -> Answer? in
                switch state.recent.begin(idempotencyKey, now: time, retry: acknowledged) {
                case .answered(let first): return (.success(first), [])
                case .waiting: return nil
                case .proceed: break
                }
                let draft = Draft(channel: channel, time: time, publisher: publisher, payload: payload)
                do throws(StoreError) {
                    // Under the lock, so that this node's publishes reach the store in order.
                    try shared.append(draft, idempotencyKey: idempotencyKey) { result in
                        self.sequenced(result, on: channel, idempotencyKey: idempotencyKey, acknowledged: acknowledged)
                    }
                    state.awaitingCommit += 1
                    return nil
                } catch {
                    return (.failure(error), idempotencyKey.map { state.recent.fail($0) } ?? [])
                }
            }
            guard let (outcome, retries) = answer else { return }
            acknowledged(outcome)
            for retry in retries { retry(outcome) }
            return
        }
        guard let store else {
            let message = withChannel(channel) { state in
                if let idempotencyKey, case .committed(let first) = state.recent.lookup(idempotencyKey, now: time) { return first }
                let message = state.log.append(payload, publisher: publisher, now: time)
                deliver(message, to: &state, now: time)
                if let idempotencyKey { _ = state.recent.commit(idempotencyKey, message, now: time) }
                return message
            }
            acknowledged(.success(message))
            return
        }
        let answer = withChannel(channel) { state -> Answer? in
            switch state.recent.begin(idempotencyKey, now: time, retry: acknowledged) {
            case .answered(let first): return (.success(first), [])
            case .waiting: return nil
            case .proceed: break
            }
            let message = state.log.assign(payload, publisher: publisher, now: time)
            do throws(StoreError) {
                // Under the lock, so that the store queues the channel's messages in offset order.
                try store.append(message, idempotencyKey: idempotencyKey) { error in
                    self.committed(message, idempotencyKey: idempotencyKey, error: error, acknowledged: acknowledged)
                }
                return nil
            } catch {
                state.log.unassign(message)
                return (.failure(error), idempotencyKey.map { state.recent.fail($0) } ?? [])
            }
        }
        guard let (outcome, retries) = answer else { return }
        acknowledged(outcome)
        for retry in retries { retry(outcome) }
    }

    /// ``publish(_:to:publisher:idempotencyKey:acknowledged:)``, returning the message once it
    /// is in the log.
    /// - Throws: the store's error if it could not commit the message.
    @discardableResult
    public func publish(
        _ payload: Payload,
        to channel: ChannelName,
        publisher: UUID? = nil,
        idempotencyKey: IdempotencyKey? = nil
    ) async throws(StoreError) -> Message {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Message, StoreError>, Never>) in
            publish(payload, to: channel, publisher: publisher, idempotencyKey: idempotencyKey) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// The store's answer for one message, in the channel's offset order: committed, it joins
    /// the log and reaches subscribers; not, the epoch ends (its position and those assigned
    /// after it will never be committed, and a later message must not leave a gap).
    private func committed(
        _ message: Message,
        idempotencyKey: IdempotencyKey?,
        error: StoreError?,
        acknowledged: @Sendable (Result<Message, StoreError>) -> Void
    ) {
        let time = now()
        let (outcome, retries): (Result<Message, StoreError>, [RecentPublishes.Callback]) = withChannel(message.channel) { state in
            let failure: StoreError
            if let error {
                if state.log.epoch == message.position.epoch { endEpoch(&state) }
                failure = error
            } else if state.log.commit(message) {
                deliver(message, to: &state, now: time)
                return (.success(message), idempotencyKey.map { state.recent.commit($0, message, now: time) } ?? [])
            } else {
                failure = StoreError("the channel's epoch ended before this message was committed")
            }
            return (.failure(failure), idempotencyKey.map { state.recent.fail($0) } ?? [])
        }
        acknowledged(outcome)
        for retry in retries { retry(outcome) }
    }

    /// A shared store's answer for one of this node's publishes. A new message joins the log
    /// here if it is the next one; if messages from other nodes come before it, a catch-up read
    /// brings them and it in order, and the publisher is answered once it is in the log (so a
    /// publisher subscribed to the channel gets the `message` before its acknowledgement).
    private func sequenced(
        _ result: Result<Appended, StoreError>,
        on channel: ChannelName,
        idempotencyKey: IdempotencyKey?,
        acknowledged: @escaping @Sendable (Result<Message, StoreError>) -> Void
    ) {
        let time = now()
        let (ready, behind): ([Acknowledgement], Bool) =
            withExistingChannel(channel) { state in
                state.awaitingCommit -= 1
                guard case .success(let appended) = result else {
                    let retries = idempotencyKey.map { state.recent.fail($0) } ?? []
                    let outcome = result.map(\.message)
                    return ([{ for answer in [acknowledged] + retries { answer(outcome) } }], false)
                }
                let message = appended.message
                let retries = idempotencyKey.map { state.recent.commit($0, message, now: time) } ?? []
                let acknowledge: Acknowledgement = { for answer in [acknowledged] + retries { answer(.success(message)) } }
                var ready: [Acknowledgement] = []
                if appended.isNew ? ingest(message, into: &state, now: time, ready: &ready) : state.log.holds(message.position) {
                    return (ready + [acknowledge], false)
                }
                if message.position.epoch == state.log.epoch {
                    state.acknowledgeOnJoin[message.offset, default: []].append(acknowledge)
                    return (ready, true)
                }
                return (ready + [acknowledge], true)  // another epoch: the log starts again
            } ?? ([{ acknowledged(result.map(\.message)) }], false)
        if behind { catchUp(channel) }
        for acknowledge in ready { acknowledge() }
    }

    /// An answer to a publisher, run once the channel's lock is let go.
    private typealias Acknowledgement = @Sendable () -> Void

    /// Adds a message a shared store positioned to the log if it is the next one, and hands it
    /// to subscribers; the acknowledgements that waited for it go to `ready`. `false` if the log
    /// lacks messages before it (or is in another epoch).
    private func ingest(
        _ message: Message,
        into state: inout ChannelState.Locked,
        now time: Date,
        ready: inout [Acknowledgement]
    ) -> Bool {
        guard message.position.epoch == state.log.epoch, message.offset <= state.log.lastOffset + 1 else { return false }
        if state.log.commit(message) {
            deliver(message, to: &state, now: time)
            if let waiting = state.acknowledgeOnJoin.removeValue(forKey: message.offset) { ready += waiting }
        }
        return true
    }

    /// Reads what `channel`'s log lacks from the shared store, one read at a time per channel;
    /// a request while one runs makes it read again when it is done.
    private func catchUp(_ channel: ChannelName) {
        guard let shared else { return }
        let start: StreamPosition?? = withExistingChannel(channel) { state in
            guard !state.catchingUp else {
                state.catchUpAgain = true
                return nil
            }
            state.catchingUp = true
            return state.log.position
        }
        guard let start = start ?? nil else { return }
        Task { await self.readMissing(channel, from: start, in: shared) }
    }

    private func readMissing(_ channel: ChannelName, from start: StreamPosition, in shared: any SharedLogStore) async {
        var position = start
        var failures = 0
        while true {
            let result: CatchUp
            do throws(StoreError) {
                result = try await shared.read(channel, after: position, limit: Self.catchUpPage, retention: retention)
                failures = 0
            } catch {
                // Again, sooner at first, then every 0.8 s.
                failures += 1
                try? await Task.sleep(for: .milliseconds(50 << min(failures, 4)))
                // Only while someone waits for it; otherwise the next notification, publish or
                // resynchronize() (the store's link came back) starts it again.
                let next: StreamPosition?? = withExistingChannel(channel) { state in
                    guard failures < 4 || !state.acknowledgeOnJoin.isEmpty || !state.caughtUpWaiters.isEmpty else {
                        state.catchingUp = false
                        return nil
                    }
                    return state.log.position
                }
                guard let next = next ?? nil else { return }
                position = next
                continue
            }
            let time = now()
            var ready: [Acknowledgement] = []
            let next: StreamPosition?? = withExistingChannel(channel) { state in
                var more = state.catchUpAgain
                state.catchUpAgain = false
                switch result {
                case .messages(let messages, let following):
                    for message in messages where !ingest(message, into: &state, now: time, ready: &ready) {
                        more = true  // the log moved meanwhile (another epoch): read again
                        break
                    }
                    more = more || following
                case .restart(let stored):
                    ready += restart(&state, from: stored, now: time)
                }
                guard more else {
                    state.catchingUp = false
                    dropSubscribersAhead(&state)
                    for waiter in state.caughtUpWaiters.values { waiter.resume() }
                    state.caughtUpWaiters = [:]
                    return nil
                }
                return state.log.position
            }
            for acknowledge in ready { acknowledge() }
            guard let next = next ?? nil else { return }
            position = next
        }
    }

    /// Caught up with the store: a subscriber that resumed from a position still ahead of the
    /// log was given one the store never had (made up, or lost with the database's tail). It
    /// would wait for offsets that mean other messages, so it is told, as for a restart.
    private func dropSubscribersAhead(_ state: inout ChannelState.Locked) {
        let current = state.log.position
        for (key, member) in state.subscribers where member.after > current.offset {
            state.subscribers.removeValue(forKey: key)
            member.subscriber.lost(state.log.channel, current: current)
            state.announce(.leave(state.log.channel, member.member))
            shared?.announce(.leave(state.log.channel, member.member))
        }
    }

    /// The shared store no longer has every message after this log's position: the log starts
    /// again from what the store has. Subscribers that followed the old log would miss messages
    /// without knowing, so each is told (``Subscriber/lost(_:current:)``) and unsubscribed;
    /// parked polls wake to find their position unrecoverable.
    /// Returns the acknowledgements that waited for messages of the old log: they are
    /// committed, so their publishers are answered.
    private func restart(_ state: inout ChannelState.Locked, from stored: StoredLog, now time: Date) -> [Acknowledgement] {
        state.log = ChannelLog(channel: state.log.channel, retention: retention, restored: stored, now: time)
        let waiting = state.acknowledgeOnJoin.values.flatMap { $0 }
        state.acknowledgeOnJoin = [:]
        let current = state.log.position
        for member in state.subscribers.values {
            member.subscriber.lost(state.log.channel, current: current)
            shared?.announce(.leave(state.log.channel, member.member))
        }
        state.subscribers.removeAll()
        wakeWaiters(&state)
        return waiting
    }

    /// Hands a message that joined the log to the channel's subscribers and waiting polls.
    private func deliver(_ message: Message, to state: inout ChannelState.Locked, now time: Date) {
        for subscription in state.subscribers.values where message.offset > subscription.after {
            subscription.subscriber.receive(message)
        }
        // Fan-out made the message's copies: hold the log to its byte bound now.
        prune(&state, now: time)
        wakeWaiters(&state)
    }

    /// A store lost messages that were given positions: the log starts again in a new epoch.
    /// Parked polls wake to find their position unrecoverable, as does anyone who resumes.
    private func endEpoch(_ state: inout ChannelState.Locked) {
        state.log.restartEpoch()
        state.trimmedThrough = 0
        wakeWaiters(&state)
    }

    private func wakeWaiters(_ state: inout ChannelState.Locked) {
        guard !state.waiters.isEmpty else { return }
        waiterTotal.subtract(state.waiters.count, ordering: .relaxed)
        for waiter in state.waiters.values { waiter.resume() }
        state.waiters.removeAll()
    }

    /// Holds the log to its retention, and tells the store what it may delete.
    private func prune(_ state: inout ChannelState.Locked, now time: Date) {
        state.log.prune(now: time)
        // A shared store keeps its own retention: one node's window (its byte bound counts its
        // own copies) must not decide what the other nodes can still read.
        guard let store, state.log.droppedThrough > state.trimmedThrough else { return }
        state.trimmedThrough = state.log.droppedThrough
        store.trim(state.log.channel, epoch: state.log.epoch, through: state.trimmedThrough)
    }

    /// Subscribes `subscriber` to `channel`.
    ///
    /// Under the channel's lock it calls `onSubscribed` (so the transport can queue its reply
    /// first), then hands the subscriber every message after `position` (if given and
    /// resumable), then registers it for live messages. Subscribing again replaces the earlier
    /// subscription without a second join event.
    /// - Parameters:
    ///   - position: resume after this position; `nil` starts from now.
    ///   - member: how presence lists the subscriber.
    ///   - presenceEvents: whether to receive join and leave events.
    @discardableResult
    public func subscribe(
        _ subscriber: some Subscriber,
        to channel: ChannelName,
        from position: StreamPosition? = nil,
        member: PresenceMember,
        presenceEvents: Bool = false,
        onSubscribed: (Subscription) -> Void = { _ in }
    ) -> Subscription {
        let time = now()
        let (subscription, behind) = withChannel(channel) { state -> (Subscription, Bool) in
            prune(&state, now: time)
            var replay: [Message] = []
            var recovered: Bool?
            var after: UInt64 = 0
            if let position, state.isAhead(position) {
                // Another node served this client further: this node is behind, not the client.
                // It catches up, and the subscriber gets only what comes after its position.
                recovered = true
                after = position.offset
            } else if let position {
                recovered = state.log.canResume(from: position)
                if recovered == true {
                    replay = state.log.messages(after: position.offset, limit: .max, budget: .unlimited)
                }
            }
            let subscription = Subscription(
                channel: channel,
                position: after > 0 ? position ?? state.log.position : state.log.position,
                recovered: recovered,
                replayed: replay.count
            )
            onSubscribed(subscription)
            for message in replay { subscriber.receive(message) }
            if !replay.isEmpty { prune(&state, now: time) }  // the replay made copies
            let key = ObjectIdentifier(subscriber)
            let isNew = state.subscribers[key] == nil
            state.subscribers[key] = .init(subscriber: subscriber, member: member, presenceEvents: presenceEvents, after: after)
            if isNew {
                state.announce(.join(channel, member))
                shared?.announce(.join(channel, member))
            }
            return (subscription, after > 0)
        }
        if behind { catchUp(channel) }
        return subscription
    }

    /// Removes `subscriber` from `channel`, announcing its leave.
    /// - Returns: `false` if it was not subscribed.
    @discardableResult
    public func unsubscribe(_ subscriber: some Subscriber, from channel: ChannelName) -> Bool {
        let key = ObjectIdentifier(subscriber)
        return withExistingChannel(channel) { state in
            guard let removed = state.subscribers.removeValue(forKey: key) else { return false }
            state.announce(.leave(channel, removed.member))
            shared?.announce(.leave(channel, removed.member))
            return true
        } ?? false
    }

    /// The channel's retained messages: those after `position` if given, else the latest.
    /// - Parameters:
    ///   - limit: most messages returned; with a position, the oldest `limit` after it.
    ///   - budget: most bytes returned (at least one message); without a position, the newest
    ///     that fit.
    public func history(_ channel: ChannelName, since position: StreamPosition? = nil, limit: Int = .max, budget: ReadBudget = .unlimited) -> History {
        let time = now()
        let (history, behind) = withChannel(channel) { state in
            prune(&state, now: time)
            let history = state.read(channel, since: position, limit: limit, budget: budget)
            // The read made copies (its budget's encodings): hold the log to its bound again.
            prune(&state, now: time)
            return (history, position.map { state.isAhead($0) } ?? false)
        }
        if behind { catchUp(channel) }
        return history
    }

    /// Who is subscribed to `channel`, ordered by id.
    public func presence(_ channel: ChannelName) -> [PresenceMember] {
        let members =
            withExistingChannel(channel) { state in
                state.subscribers.values.map(\.member) + state.remote.values.map(\.member)
            } ?? []
        return members.sorted { $0.id.uuidString < $1.id.uuidString }
    }

    /// One page of who is subscribed to `channel`: the members after `after` (by id), as many as
    /// fit in `maxBytes` of their JSON (``PresenceMember/jsonSize``), at least one.
    public func presence(_ channel: ChannelName, after: UUID?, maxBytes: Int) -> PresencePage {
        var members = presence(channel)
        if let after {
            let key = after.uuidString
            members.removeAll { $0.id.uuidString <= key }
        }
        var spent = 0
        var count = 0
        for member in members {
            spent += member.jsonSize
            guard count == 0 || spent <= maxBytes else { break }
            count += 1
        }
        let page = Array(members.prefix(count))
        return PresencePage(channel: channel, members: page, next: count < members.count ? page.last?.id : nil)
    }

    /// A poll: up to `limit` messages after `position`, or from the oldest retained message if
    /// `position` is `nil`. When there are none yet it waits up to `wait` for the next publish
    /// (a long poll; `wait` of zero is a short poll). Answers at once when the position cannot
    /// be resumed, and with no messages when `wait` passes.
    public func poll(
        _ channel: ChannelName,
        since position: StreamPosition?,
        limit: Int,
        wait: Duration,
        budget: ReadBudget = .unlimited
    ) async -> History {
        let time = now()
        // Nothing there yet: park. waitForAppend checks the log again under the lock before it
        // parks, so an append between this read and the parking is not missed.
        let (ready, start, behind): (History?, StreamPosition, Bool) = withChannel(channel) { state in
            prune(&state, now: time)
            let start = position ?? state.log.startPosition
            let history = state.read(channel, since: start, limit: limit, budget: budget)
            return (history.messages.isEmpty && history.recovered && wait > .zero ? nil : history, start, state.isAhead(start))
        }
        if behind {
            // Past this node's log: another node's position (this node catches up first), or
            // one the store never had, which is told as such once this node has caught up.
            if await caughtUp(channel, within: Self.catchUpWait) {
                let (settled, stillAhead, current) = withChannel(channel) { state in
                    (state.read(channel, since: start, limit: limit, budget: budget), state.isAhead(start), state.log.position)
                }
                if stillAhead { return History(channel: channel, messages: [], position: current, recovered: false) }
                if !settled.messages.isEmpty || wait == .zero { return settled }
            }
        } else if let ready {
            return ready
        }
        let ticket = UUID.random()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForAppend(to: channel, after: start, ticket: ticket) }
            group.addTask { try? await Task.sleep(for: wait) }
            await group.next()
            group.cancelAll()
        }
        return history(channel, since: start, limit: limit, budget: budget)
    }

    /// Prunes every log and forgets channels that hold nothing and nobody, one shard at a time:
    /// a shard is locked only while its own channels are looked at.
    public func sweep() {
        for index in shards.indices { sweep(shard: index) }
    }

    /// ``sweep()`` with a pause between shards, for the sweeper's task: it never holds the
    /// cooperative pool for a whole pass.
    public func sweepYielding() async {
        for index in shards.indices {
            sweep(shard: index)
            await Task.yield()
        }
    }

    private func sweep(shard index: Int) {
        let time = now()
        let forgotten = shards[index].withLock { channels in
            let before = channels.count
            channels = channels.filter { _, state in
                state.lock.withLock { state in
                    prune(&state, now: time)
                    state.recent.forget(now: time)
                    let idle =
                        state.log.isEmpty && !state.log.hasUncommitted && state.awaitingCommit == 0 && !state.catchingUp
                        && state.acknowledgeOnJoin.isEmpty && state.caughtUpWaiters.isEmpty && state.recent.count == 0 && state.subscribers.isEmpty
                        && state.waiters.isEmpty
                    if idle { state.retired = true }
                    return !idle
                }
            }
            return before - channels.count
        }
        if forgotten > 0 { channelTotal.subtract(forgotten, ordering: .relaxed) }
    }

    /// How many long polls are parked, waiting for a message, across all channels.
    public var waitingPolls: Int { waiterTotal.load(ordering: .relaxed) }

    /// How many channels the hub holds now.
    public var channelCount: Int { channelTotal.load(ordering: .relaxed) }

    // MARK: - Channels

    /// Longest a poll from a position past this node's log waits for the node to catch up
    /// before it is answered as usual.
    static let catchUpWait = Duration.seconds(2)

    /// Starts a catch-up of `channel` and waits for it to finish, at most `limit`: `true` if it
    /// did, having read the store after this call began.
    private func caughtUp(_ channel: ChannelName, within limit: Duration) async -> Bool {
        let ticket = UUID.random()
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let registered =
                            self.withExistingChannel(channel) { state in
                                guard !Task.isCancelled else { return false }
                                state.caughtUpWaiters[ticket] = continuation
                                return true
                            } ?? false
                        if registered { self.catchUp(channel) } else { continuation.resume() }
                    }
                } onCancel: {
                    let waiter = self.withExistingChannel(channel) { state in state.caughtUpWaiters.removeValue(forKey: ticket) }
                    waiter??.resume()
                }
                return !Task.isCancelled
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return false
            }
            let finished = await group.next() ?? false
            group.cancelAll()
            return finished
        }
    }

    private func waitForAppend(to channel: ChannelName, after position: StreamPosition, ticket: UUID) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let parked = withChannel(channel) { state in
                    guard state.log.epoch == position.epoch, state.log.lastOffset <= position.offset, !Task.isCancelled else { return false }
                    state.waiters[ticket] = continuation
                    waiterTotal.add(1, ordering: .relaxed)
                    return true
                }
                if !parked { continuation.resume() }
            }
        } onCancel: {
            let waiter = withExistingChannel(channel) { state in
                let waiter = state.waiters.removeValue(forKey: ticket)
                if waiter != nil { waiterTotal.subtract(1, ordering: .relaxed) }
                return waiter
            }
            waiter??.resume()
        }
    }

    /// Runs `body` on `channel`'s state, locked, creating the channel if needed.
    private func withChannel<T>(_ channel: ChannelName, _ body: (inout ChannelState.Locked) -> T) -> T {
        let shard = shard(channel)
        while true {
            let found = shard.withLock { $0[channel] }
            // A new channel's log is restored outside the shard's lock: the store may read.
            let state =
                found
                ?? shard.withLock { [opened = openLog(channel)] channels in
                    if let state = channels[channel] { return state }
                    let state = ChannelState(log: opened.0, recent: opened.1, followsStore: shared != nil)
                    channels[channel] = state
                    channelTotal.add(1, ordering: .relaxed)
                    if shared != nil { Task { await self.loadMembers(of: channel) } }
                    return state
                }
            // A sweep may have retired the state between the lookup and the lock: look again.
            let result: T? = state.lock.withLock { locked in
                locked.retired ? nil : body(&locked)
            }
            if let result { return result }
        }
    }

    /// A channel's log as the store kept it, or a new one. A store that cannot be read leaves a
    /// new epoch: whoever resumes is told their position is not recoverable. (A shared store's
    /// log then starts again from the store's once the channel next catches up: on the next
    /// publish or notification, or when the store's link comes back.)
    /// The keys of restored messages still within the window come back too.
    private func openLog(_ channel: ChannelName) -> (ChannelLog, RecentPublishes) {
        let restored = shared.map { shared in try? shared.open(channel, retention: retention) } ?? (try? store?.restore(channel, retention: retention))
        let time = now()
        var recent = RecentPublishes(window: idempotency)
        for message in restored?.messages ?? [] {
            guard let key = restored?.idempotencyKeys[message.offset] else { continue }
            _ = recent.commit(key, message, now: message.time)
        }
        recent.forget(now: time)
        return (ChannelLog(channel: channel, retention: retention, restored: restored, now: time), recent)
    }

    /// Reads a channel's members on other nodes: after it opens, adding them (read once the
    /// channel is in the table, so that a join announced meanwhile arrives either in the read
    /// or as a notification); after notifications may have been lost, `replacing` what was
    /// known, with join and leave events for the difference.
    private func loadMembers(of channel: ChannelName, replacing: Bool = false) async {
        guard withExistingChannel(channel, { state in state.loadingMembers += 1 }) != nil else { return }
        let members = (try? await shared?.members(channel)) ?? nil
        _ = withExistingChannel(channel) { state in
            state.loadingMembers -= 1
            defer {
                if state.loadingMembers == 0 {
                    state.leftWhileLoading = []
                    state.joinedWhileLoading = []
                }
            }
            guard let members = members?.filter({ !state.leftWhileLoading.contains($0.member.id) }) else { return }
            let loaded = Set(members.map(\.member.id))
            if replacing {
                for (id, gone) in state.remote where !loaded.contains(id) && !state.joinedWhileLoading.contains(id) {
                    state.remote.removeValue(forKey: id)
                    state.announce(.leave(channel, gone.member))
                }
            }
            for remote in members where state.remote[remote.member.id] == nil {
                state.remote[remote.member.id] = remote
                state.announce(.join(channel, remote.member))
            }
        }
    }

    /// Runs `body` on `channel`'s state if the channel exists; `nil` if not.
    private func withExistingChannel<T>(_ channel: ChannelName, _ body: (inout ChannelState.Locked) -> T) -> T? {
        guard let state = shard(channel).withLock({ $0[channel] }) else { return nil }
        return state.lock.withLock { locked in locked.retired ? nil : body(&locked) }
    }
}

/// One channel: its log, subscribers and parked polls, behind one lock.
private final class ChannelState: Sendable {
    struct Member {
        let subscriber: any Subscriber
        let member: PresenceMember
        let presenceEvents: Bool
        /// Messages up to this offset are not handed to it: it had them from another node.
        var after: UInt64 = 0
    }

    struct Locked {
        var log: ChannelLog
        var recent: RecentPublishes
        var subscribers: [ObjectIdentifier: Member] = [:]
        /// Reads of the other nodes' members under way, and who left or joined meanwhile (so
        /// that a read made before a leave or a join does not undo it).
        var loadingMembers = 0
        var leftWhileLoading: Set<UUID> = []
        var joinedWhileLoading: Set<UUID> = []
        /// With a shared store: the channel's members on other nodes, by id.
        var remote: [UUID: NodeMember] = [:]
        var waiters: [UUID: CheckedContinuation<Void, Never>] = [:]
        var retired = false
        /// This node's publishes a shared store has not answered yet.
        var awaitingCommit = 0
        /// This node's publishes committed ahead of the log, answered when they join it.
        var acknowledgeOnJoin: [UInt64: [@Sendable () -> Void]] = [:]
        /// Polls waiting for the next catch-up to finish.
        var caughtUpWaiters: [UUID: CheckedContinuation<Void, Never>] = [:]
        /// A catch-up read from a shared store is under way, and whether to read again after it.
        var catchingUp = false
        var catchUpAgain = false
        /// The offset the store was last told it may delete through.
        var trimmedThrough: UInt64 = 0

        func announce(_ event: PresenceEvent) {
            for subscription in subscribers.values where subscription.presenceEvents {
                subscription.subscriber.receive(event)
            }
        }

        /// Whether `position` is past this log's end in its epoch: with a shared store, a
        /// position another node gave out before this one heard of it (no sticky sessions).
        /// Without one, such a position is simply not recoverable.
        let followsStore: Bool

        func isAhead(_ position: StreamPosition) -> Bool {
            followsStore && position.epoch == log.epoch && position.offset > log.lastOffset
        }

        func read(_ channel: ChannelName, since position: StreamPosition?, limit: Int, budget: ReadBudget) -> History {
            guard let position else {
                return History(channel: channel, messages: log.latest(limit, budget: budget), position: log.position, recovered: true)
            }
            if isAhead(position) {
                return History(channel: channel, messages: [], position: position, recovered: true)
            }
            guard log.canResume(from: position) else {
                return History(channel: channel, messages: [], position: log.position, recovered: false)
            }
            let messages = log.messages(after: position.offset, limit: limit, budget: budget)
            return History(channel: channel, messages: messages, position: messages.last?.position ?? log.position, recovered: true)
        }
    }

    let lock: Mutex<Locked>

    init(log: ChannelLog, recent: RecentPublishes, followsStore: Bool) {
        self.lock = Mutex(Locked(log: log, recent: recent, followsStore: followsStore))
    }
}

extension Hub: LogFollower {
    /// Called by a shared store: `channel`'s log reached `position` on some node. If this hub
    /// holds the channel and is behind, it reads what it lacks.
    public func advanced(_ channel: ChannelName, to position: StreamPosition) {
        let behind =
            withExistingChannel(channel) { state in
                position.epoch != state.log.epoch || position.offset > state.log.lastOffset
            } ?? false
        if behind { catchUp(channel) }
    }

    /// Called by a shared store: `member` joined `channel` on another node.
    public func joined(_ channel: ChannelName, _ member: PresenceMember, on node: UUID) {
        _ = withExistingChannel(channel) { state in
            if state.loadingMembers > 0 {
                state.leftWhileLoading.remove(member.id)
                state.joinedWhileLoading.insert(member.id)
            }
            guard state.remote.updateValue(NodeMember(node: node, member: member), forKey: member.id) == nil else { return }
            state.announce(.join(channel, member))
        }
    }

    /// Called by a shared store: the member `client` left `channel` on another node.
    public func left(_ channel: ChannelName, client: UUID, on node: UUID) {
        _ = withExistingChannel(channel) { state in
            // A read of the members under way may have been made before this leave.
            if state.loadingMembers > 0 {
                state.leftWhileLoading.insert(client)
                state.joinedWhileLoading.remove(client)
            }
            guard state.remote[client]?.node == node, let gone = state.remote.removeValue(forKey: client) else { return }
            state.announce(.leave(channel, gone.member))
        }
    }

    /// Called by a shared store: these nodes stopped saying they are alive (they died or lost
    /// the database); their members leave every channel here.
    public func nodesGone(_ nodes: Set<UUID>) {
        guard !nodes.isEmpty else { return }
        for shard in shards {
            for channel in shard.withLock({ Array($0.keys) }) {
                _ = withExistingChannel(channel) { state in
                    for (id, remote) in state.remote where nodes.contains(remote.node) {
                        state.remote.removeValue(forKey: id)
                        state.announce(.leave(channel, remote.member))
                    }
                }
            }
        }
    }

    /// Called by a shared store whose notifications may have been lost: every channel this hub
    /// holds reads what it lacks.
    /// Presence is put right both ways: this node records its own members again (another node
    /// may have deleted them as a dead node's), and reads the other nodes' afresh.
    public func resynchronize() {
        for shard in shards {
            for channel in shard.withLock({ Array($0.keys) }) {
                catchUp(channel)
                let members = withExistingChannel(channel) { state in state.subscribers.values.map(\.member) } ?? []
                for member in members { shared?.announce(.join(channel, member)) }
                Task { await self.loadMembers(of: channel, replacing: true) }
            }
        }
    }
}
