// SPDX-License-Identifier: Apache-2.0

import Foundation

/// Subscribing and reading: subscribe, unsubscribe, history and polls. Each may find its
/// channel opening (its log being read from a store): it then parks on the channel, in order,
/// and is answered once the log is here, or with the store's error.
extension Hub {
    /// Subscribes `subscriber` to `channel`.
    ///
    /// Under the channel's lock it calls `completion` (so the transport can queue its reply
    /// first), then hands the subscriber every message after `position` (if given and
    /// resumable), then registers it for live messages. Subscribing again replaces the earlier
    /// subscription without a second join event. If the channel's log cannot be read from the
    /// store in time, `completion` gets the error and nothing is registered.
    /// - Parameters:
    ///   - position: resume after this position; `nil` starts from now.
    ///   - member: how presence lists the subscriber.
    ///   - presenceEvents: whether to receive join and leave events.
    ///   - completion: runs under the channel's lock on success, so it must only queue.
    public func subscribe(
        _ subscriber: any Subscriber,
        to channel: ChannelName,
        from position: StreamPosition? = nil,
        member: PresenceMember,
        presenceEvents: Bool = false,
        completion: @escaping @Sendable (Result<Subscription, StoreError>) -> Void
    ) {
        let subscription = SubscribeRequest(
            subscriber: subscriber, channel: channel, position: position, member: member, presenceEvents: presenceEvents, completion: completion)
        if let behind = withOpenChannel(channel, { register(subscription, into: &$0) }) {
            if behind { catchUp(channel) }
            return
        }
        whenOpen(
            channel,
            { state -> AfterUnlock? in
                guard self.register(subscription, into: &state) else { return nil }
                return { self.catchUp(channel) }
            }, failed: { completion(.failure($0)) })
    }

    /// ``subscribe(_:to:from:member:presenceEvents:completion:)``, returning the subscription;
    /// `onSubscribed` runs under the channel's lock before the replay, to queue what must come
    /// first.
    /// - Throws: the store's error if the channel's log could not be read in time.
    @discardableResult
    public func subscribe(
        _ subscriber: any Subscriber,
        to channel: ChannelName,
        from position: StreamPosition? = nil,
        member: PresenceMember,
        presenceEvents: Bool = false,
        onSubscribed: @escaping @Sendable (Subscription) -> Void = { _ in }
    ) async throws(StoreError) -> Subscription {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Subscription, StoreError>, Never>) in
            subscribe(subscriber, to: channel, from: position, member: member, presenceEvents: presenceEvents) { result in
                if case .success(let subscription) = result { onSubscribed(subscription) }
                continuation.resume(returning: result)
            }
        }
        return try result.get()
    }

    /// Under the channel's lock: answers, replays and registers a subscriber. `true` when it
    /// resumed from a position past this node's log, which must catch up.
    private func register(_ request: SubscribeRequest, into state: inout ChannelState.Locked) -> Bool {
        let time = now()
        prune(&state, now: time)
        var replay: [Message] = []
        var recovered: Bool?
        var aheadOf: StreamPosition?
        if let position = request.position {
            switch state.log.standing(of: position, now: time) {
            case .ahead:
                // Another node served this client further: this node is behind, not the client.
                // It catches up, and the subscriber gets only what comes after its position.
                recovered = true
                aheadOf = position
            case .lost:
                recovered = false
            case .resumable(let after):
                recovered = true
                replay = state.log.messages(after: after, limit: .max, budget: .unlimited)
            }
        }
        let subscription = Subscription(
            channel: request.channel,
            position: aheadOf ?? state.log.position(now: time),
            recovered: recovered,
            replayed: replay.count
        )
        request.completion(.success(subscription))
        for message in replay { request.subscriber.receive(message) }
        if !replay.isEmpty { prune(&state, now: time) }  // the replay made copies
        let isNew = state.audience.add(
            ChannelAudience.Member(subscriber: request.subscriber, member: request.member, presenceEvents: request.presenceEvents, aheadOf: aheadOf))
        if isNew { record(.join(request.channel, request.member), isLocal: true, in: &state) }
        return aheadOf != nil
    }

    /// Removes `subscriber` from `channel`, announcing its leave; after its subscribe, if that
    /// is still parked on the channel's opening.
    /// - Returns: `false` if it was not subscribed (nor on its way to be).
    @discardableResult
    public func unsubscribe(_ subscriber: any Subscriber, from channel: ChannelName) -> Bool {
        let key = ObjectIdentifier(subscriber)
        guard let state = shard(channel).withLock({ $0[channel] }) else { return false }
        let remove: @Sendable (inout ChannelState.Locked) -> Bool = { state in
            guard let removed = state.audience.remove(key) else { return false }
            self.record(.leave(channel, removed.member), isLocal: true, in: &state)
            return true
        }
        enum Outcome {
            case done(Bool)
            case parked
            case retired
        }
        let outcome = state.lock.withLock { locked -> Outcome in
            if locked.retired { return .retired }
            if var parked = locked.opening.take() {
                let removal = ParkedOperation(
                    run: { state in
                        _ = remove(&state)
                        return nil
                    }, fail: { _ in })
                parked.append(removal)
                locked.opening = parked
                return .parked
            }
            return .done(remove(&locked))
        }
        switch outcome {
        case .done(let removed): return removed
        case .parked: return true
        case .retired: return false
        }
    }

    /// The channel's retained messages: those after `position` if given, else the latest.
    /// - Parameters:
    ///   - limit: most messages returned; with a position, the oldest `limit` after it.
    ///   - budget: most bytes returned (at least one message); without a position, the newest
    ///     that fit.
    ///   - completion: the history, or the store's error if the channel's log could not be read
    ///     in time; on whatever thread the log arrived on, if it had to be read.
    public func history(
        _ channel: ChannelName,
        since position: StreamPosition? = nil,
        limit: Int = .max,
        budget: ReadBudget = .unlimited,
        completion: @escaping @Sendable (Result<History, StoreError>) -> Void
    ) {
        let read: @Sendable (inout ChannelState.Locked) -> (History, Bool) = { state in
            self.read(channel, since: position, limit: limit, budget: budget, in: &state)
        }
        if let (history, behind) = withOpenChannel(channel, read) {
            if behind { catchUp(channel) }
            completion(.success(history))
            return
        }
        whenOpen(
            channel,
            { state in
                let (history, behind) = read(&state)
                return {
                    if behind { self.catchUp(channel) }
                    completion(.success(history))
                }
            }, failed: { completion(.failure($0)) })
    }

    /// ``history(_:since:limit:budget:completion:)``, returning the history.
    /// - Throws: the store's error if the channel's log could not be read in time.
    public func history(
        _ channel: ChannelName,
        since position: StreamPosition? = nil,
        limit: Int = .max,
        budget: ReadBudget = .unlimited
    ) async throws(StoreError) -> History {
        let (history, behind) = try await whenOpen(channel) { state in
            self.read(channel, since: position, limit: limit, budget: budget, in: &state)
        }
        if behind { catchUp(channel) }
        return history
    }

    /// Under the channel's lock: a read, and whether it was from a position past this node's log.
    private func read(_ channel: ChannelName, since position: StreamPosition?, limit: Int, budget: ReadBudget, in state: inout ChannelState.Locked) -> (
        History, Bool
    ) {
        let time = now()
        prune(&state, now: time)
        let history = state.log.read(since: position, limit: limit, budget: budget, now: time)
        // The read made copies (its budget's encodings): hold the log to its bound again.
        prune(&state, now: time)
        return (history, position.map { state.log.standing(of: $0, now: time) == .ahead } ?? false)
    }

    /// Opens `channel`'s log if it is not open yet: returns once it is.
    /// - Throws: the store's error if it could not be read in time.
    public func open(_ channel: ChannelName) async throws(StoreError) {
        try await whenOpen(channel) { _ in () }
    }

    /// Runs `body` on `channel`'s open state, waiting (parked, no thread held) while its log is
    /// read from the store.
    func whenOpen<T: Sendable>(_ channel: ChannelName, _ body: @escaping @Sendable (inout ChannelState.Locked) -> T) async throws(StoreError) -> T {
        if let value = withOpenChannel(channel, body) { return value }
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, StoreError>, Never>) in
            whenOpen(
                channel,
                { state in
                    let value = body(&state)
                    return { continuation.resume(returning: .success(value)) }
                }, failed: { continuation.resume(returning: .failure($0)) })
        }
        return try result.get()
    }

    /// A poll: up to `limit` messages after `position`, or — if `position` is `nil` — from the
    /// oldest retained message (`backlog`) or from now. When there are none yet it waits up to
    /// `wait` for the next publish (a long poll; `wait` of zero is a short poll). Answers at once
    /// when the position cannot be resumed, and with no messages when `wait` passes.
    /// - Throws: the store's error if the channel's log could not be read in time.
    public func poll(
        _ channel: ChannelName,
        since position: StreamPosition?,
        limit: Int,
        wait: Duration,
        budget: ReadBudget = .unlimited,
        backlog: Bool = true
    ) async throws(StoreError) -> History {
        // Nothing there yet: park. waitForAppend checks the log again under the lock before it
        // parks, so an append between this read and the parking is not missed.
        let (ready, start, behind) = try await whenOpen(channel) { state -> (History?, StreamPosition, Bool) in
            let time = self.now()
            self.prune(&state, now: time)
            let start = position ?? (backlog ? state.log.startPosition(now: time) : state.log.position(now: time))
            let history = state.log.read(since: start, limit: limit, budget: budget, now: time)
            let behind = state.log.standing(of: start, now: time) == .ahead
            return (history.messages.isEmpty && history.recovered && wait > .zero ? nil : history, start, behind)
        }
        if behind {
            // Past this node's log: another node's position (this node catches up first), or
            // one the store never had, which is told as such once this node has caught up.
            if await caughtUp(channel, within: Self.catchUpWait) {
                let (settled, stillAhead, current) = try await whenOpen(channel) { state in
                    let time = self.now()
                    return (
                        state.log.read(since: start, limit: limit, budget: budget, now: time), state.log.standing(of: start, now: time) == .ahead,
                        state.log.position(now: time)
                    )
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
        return try await history(channel, since: start, limit: limit, budget: budget)
    }

    /// Parks until the next message after `position` joins the log (or the log moves on so that
    /// `position` no longer reads as it did), unless one is there already.
    private func waitForAppend(to channel: ChannelName, after position: StreamPosition, ticket: UUID) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let parked =
                    withExistingChannel(channel) { state in
                        guard case .resumable(let after) = state.log.standing(of: position, now: now()), after >= state.log.lastOffset,
                            !Task.isCancelled
                        else { return false }
                        state.polls[ticket] = continuation
                        waiterTotal.add(1, ordering: .relaxed)
                        return true
                    } ?? false
                if !parked { continuation.resume() }
            }
        } onCancel: {
            let waiter = withExistingChannel(channel) { state in
                let waiter = state.polls.removeValue(forKey: ticket)
                if waiter != nil { waiterTotal.subtract(1, ordering: .relaxed) }
                return waiter
            }
            waiter??.resume()
        }
    }
}

/// One subscribe on its way to a channel.
private struct SubscribeRequest: Sendable {
    let subscriber: any Subscriber
    let channel: ChannelName
    let position: StreamPosition?
    let member: PresenceMember
    let presenceEvents: Bool
    let completion: @Sendable (Result<Subscription, StoreError>) -> Void
}
