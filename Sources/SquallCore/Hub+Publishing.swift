// SPDX-License-Identifier: Apache-2.0

import Foundation

/// Publishing: one way into a channel's log, with a variant per ``LogStorage``.
///
/// - **Memory.** The message is appended, delivered and acknowledged under the channel's lock,
///   before ``publish(_:to:publisher:idempotencyKey:acknowledged:)`` returns.
/// - **A local store.** The hub assigns the position under the lock and the store commits;
///   then, in offset order, the message joins the log, reaches subscribers and is acknowledged.
///   A failed commit ends the epoch (later positions would leave a gap).
/// - **A shared store.** The store gives the position; the message joins the log when it is
///   the next one, else a catch-up brings it and everything before it (or starts the log again,
///   when the store began a new epoch), and its publisher is answered once it is in (so a
///   publisher subscribed to the channel sees its `message` before its acknowledgement).
///
/// In every variant an idempotency key seen within the window answers with the first message,
/// or waits for that one's outcome; a key used again with another payload is refused.
extension Hub {
    /// Appends `payload` to `channel`'s log and hands it to every subscriber, then calls
    /// `acknowledged` with the message; with a store, all of that once the store has committed
    /// it, and `acknowledged` gets why not if it could not.
    ///
    /// With an `idempotencyKey` seen on this channel within the ``IdempotencyWindow``, nothing
    /// is appended: `acknowledged` gets the message the key first published (its payload
    /// empty), or that publish's outcome once the store gives it — or
    /// ``PublishError/idempotencyKeyReused`` if that publish's payload was another.
    ///
    /// Without a store it all happens before this returns. With one, `acknowledged` runs on the
    /// store's thread: it must only queue (a reply to the publisher, a continuation).
    public func publish(
        _ payload: Payload,
        to channel: ChannelName,
        publisher: UUID? = nil,
        idempotencyKey: IdempotencyKey? = nil,
        acknowledged answer: @escaping @Sendable (Result<Message, PublishError>) -> Void
    ) {
        let acknowledged: @Sendable (Result<Message, PublishError>) -> Void
        if let observer {
            let start = ContinuousClock.now
            acknowledged = { result in
                observer.acknowledged(result, after: .now - start)
                answer(result)
            }
        } else {
            acknowledged = answer
        }
        let request = PublishRequest(channel: channel, payload: payload, publisher: publisher, key: idempotencyKey, time: now(), acknowledged: acknowledged)
        if let answer = withOpenChannel(channel, { take(request, into: &$0) }) {
            answer.send()
            return
        }
        whenOpen(channel, { state in self.take(request, into: &state).sending }, failed: { acknowledged(.failure(.storeUnavailable($0))) })
    }

    /// ``publish(_:to:publisher:idempotencyKey:acknowledged:)``, returning the message once it
    /// is in the log.
    /// - Throws: why it was not appended.
    @discardableResult
    public func publish(
        _ payload: Payload,
        to channel: ChannelName,
        publisher: UUID? = nil,
        idempotencyKey: IdempotencyKey? = nil
    ) async throws(PublishError) -> Message {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Message, PublishError>, Never>) in
            publish(payload, to: channel, publisher: publisher, idempotencyKey: idempotencyKey) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Under the channel's lock: `request`'s way into the log, by the hub's storage.
    private func take(_ request: PublishRequest, into state: inout ChannelState.Locked) -> PublishAnswer {
        let time = request.time
        switch state.recent.begin(request.key, request.payload.fingerprint, now: time, retry: request.acknowledged) {
        case .answered(let first): return request.answer(.success(first))
        case .waiting: return request.answer(nil)
        case .reused: return request.answer(.failure(.idempotencyKeyReused))
        case .proceed: break
        }
        switch storage {
        case .memory:
            let message = state.log.append(request.payload, publisher: request.publisher, now: time)
            deliver(message, to: &state, now: time)
            return request.answer(.success(message), retries: request.key.map { state.recent.commit($0, message, now: time) } ?? [])
        case .local(let store):
            let message = state.log.assign(request.payload, publisher: request.publisher, now: time)
            do throws(StoreError) {
                // Under the lock, so that the store queues the channel's messages in offset order.
                try store.append(message, idempotencyKey: request.key) { error in self.committed(message, request, error: error) }
                return request.answer(nil)
            } catch {
                state.log.unassign(message)
                return request.answer(.failure(.storeUnavailable(error)), retries: request.key.map { state.recent.fail($0) } ?? [])
            }
        case .shared(let log, _, _):
            let draft = Draft(channel: request.channel, time: time, publisher: request.publisher, payload: request.payload)
            do throws(StoreError) {
                // Under the lock, so that this node's publishes reach the store in order.
                try log.append(draft, idempotencyKey: request.key) { result in self.sequenced(result, request) }
                state.sync.awaitingCommit += 1
                return request.answer(nil)
            } catch {
                return request.answer(.failure(.storeUnavailable(error)), retries: request.key.map { state.recent.fail($0) } ?? [])
            }
        }
    }

    /// A local store's answer for one message, in the channel's offset order: committed, it joins
    /// the log and reaches subscribers; not, the epoch ends (its position and those assigned
    /// after it will never be committed, and a later message must not leave a gap).
    private func committed(_ message: Message, _ request: PublishRequest, error: StoreError?) {
        let time = now()
        let answer = withExistingChannel(message.channel) { state -> PublishAnswer in
            let failure: StoreError
            if let error {
                if state.log.epoch == message.position.epoch { endEpoch(&state) }
                failure = error
            } else if state.log.commit(message) {
                deliver(message, to: &state, now: time)
                return request.answer(.success(message), retries: request.key.map { state.recent.commit($0, message, now: time) } ?? [])
            } else {
                failure = StoreError("the channel's epoch ended before this message was committed")
            }
            return request.answer(.failure(.storeUnavailable(failure)), retries: request.key.map { state.recent.fail($0) } ?? [])
        }
        // A channel with a commit owed is never forgotten; should it be, the publisher still hears.
        (answer ?? request.answer(.failure(.storeUnavailable(StoreError("the channel was closed"))))).send()
    }

    /// A shared store's answer for one of this node's publishes. A new message joins the log
    /// here if it is the next one; if messages from other nodes come before it, a catch-up read
    /// brings them and it in order, and the publisher is answered once it is in the log.
    private func sequenced(_ result: Result<Appended, StoreError>, _ request: PublishRequest) {
        let time = now()
        let channel = request.channel
        let (ready, behind): ([AfterUnlock], Bool) =
            withExistingChannel(channel) { state in
                state.sync.awaitingCommit -= 1
                let appended: Appended
                switch result {
                case .failure(let error):
                    let retries = request.key.map { state.recent.fail($0) } ?? []
                    return ([request.answer(.failure(.storeUnavailable(error)), retries: retries).send], false)
                case .success(let outcome) where outcome.isKeyReused:
                    // Another node published the key with another payload.
                    let retries = request.key.map { state.recent.fail($0) } ?? []
                    return ([request.answer(.failure(.idempotencyKeyReused), retries: retries).send], false)
                case .success(let outcome):
                    appended = outcome
                }
                let message = appended.message
                let retries = request.key.map { state.recent.commit($0, message, now: time) } ?? []
                let acknowledge = request.answer(.success(message), retries: retries).send
                var ready: [AfterUnlock] = []
                if appended.isNew ? ingest(message, into: &state, now: time, ready: &ready) : state.log.holds(message.position) {
                    return (ready + [acknowledge], false)
                }
                // Behind it (or in an epoch the log has not reached: it starts again first).
                state.sync.acknowledgeOnJoin[message.position, default: []].append(acknowledge)
                return (ready, true)
            } ?? ([request.answer(result.map(\.message).mapError { .storeUnavailable($0) }).send], false)
        if behind { catchUp(channel) }
        for acknowledge in ready { acknowledge() }
    }

    /// Hands a message that joined the log to the channel's subscribers and waiting polls.
    func deliver(_ message: Message, to state: inout ChannelState.Locked, now time: Date) {
        state.audience.deliver(message)
        observer?.published(message)
        messageTotal.add(1, ordering: .relaxed)
        deliveryTotal.add(state.audience.subscribers.count, ordering: .relaxed)
        deliveredByteTotal.add(message.payload.count &* state.audience.subscribers.count, ordering: .relaxed)
        // Fan-out made the message's copies: hold the log to its byte bound now.
        prune(&state, now: time)
        wakePolls(&state)
    }

    /// A store lost messages that were given positions: the log starts again in a new epoch.
    /// Parked polls wake to find their position unrecoverable, as does anyone who resumes.
    func endEpoch(_ state: inout ChannelState.Locked) {
        state.log.restartEpoch()
        state.trimmedThrough = 0
        wakePolls(&state)
    }

    func wakePolls(_ state: inout ChannelState.Locked) {
        guard !state.polls.isEmpty else { return }
        waiterTotal.subtract(state.polls.count, ordering: .relaxed)
        for waiter in state.polls.values { waiter.resume() }
        state.polls.removeAll()
    }

    /// Holds the log to its retention, and tells a local store what it may delete.
    func prune(_ state: inout ChannelState.Locked, now time: Date) {
        state.log.prune(now: time)
        // A shared store keeps its own retention: one node's window (its byte bound counts its
        // own copies) must not decide what the other nodes can still read.
        guard case .local(let store) = storage, state.log.droppedThrough > state.trimmedThrough else { return }
        state.trimmedThrough = state.log.droppedThrough
        store.trim(state.log.channel, epoch: state.log.epoch, through: state.trimmedThrough)
    }
}

/// One publish on its way into a channel's log.
struct PublishRequest: Sendable {
    let channel: ChannelName
    let payload: Payload
    let publisher: UUID?
    let key: IdempotencyKey?
    let time: Date
    let acknowledged: RecentPublishes.Callback

    /// What to tell the publisher, and the retries waiting on its key; `nil`: the store will.
    func answer(_ outcome: Result<Message, PublishError>?, retries: [RecentPublishes.Callback] = []) -> PublishAnswer {
        PublishAnswer(outcome: outcome, retries: retries, acknowledged: acknowledged)
    }
}

/// An answer to a publisher, and to the retries that waited on its key, sent once the channel's
/// lock is let go.
struct PublishAnswer: Sendable {
    let outcome: Result<Message, PublishError>?
    let retries: [RecentPublishes.Callback]
    let acknowledged: RecentPublishes.Callback

    @Sendable func send() {
        guard let outcome else { return }
        acknowledged(outcome)
        for retry in retries { retry(outcome) }
    }

    /// ``send()``, if there is anything to send.
    var sending: AfterUnlock? { outcome == nil ? nil : send }
}
