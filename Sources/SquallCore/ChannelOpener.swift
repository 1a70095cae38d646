// SPDX-License-Identifier: Apache-2.0

import DequeModule
import Foundation
import Synchronization

/// Reads channels' logs from a store when the hub first opens them, without holding any thread:
/// a request on a channel not open yet parks on the channel until its log is here.
///
/// Contracts:
/// - **Batched and bounded.** Channels asked for while reads are under way are read together,
///   up to ``OpeningLimits/maxBatch`` a read, at most ``OpeningLimits/maxReads`` reads at once;
///   at most ``OpeningLimits/maxWaiting`` channels wait their turn, and one past that is refused at once. A read
///   holds its place until the store answers, so a store that hangs holds at most `maxReads`
///   reads, never a queue that grows.
/// - **Bounded in time.** Each channel is answered within ``OpeningLimits/timeout`` of being asked for:
///   with its log, or with a ``StoreError`` (a read that answers later is dropped).
/// - **Answered once.** `done` is called exactly once per ``open(_:done:)``, never before it
///   returns, on whatever thread the store answers on: it must only queue or take locks.
final class ChannelOpener: Sendable {
    typealias Read = @Sendable ([ChannelName]) async throws(StoreError) -> [ChannelName: StoredLog]
    typealias Done = @Sendable (Result<StoredLog?, StoreError>) -> Void

    private struct State {
        var waiting = Deque<OpenRequest>()
        var reads = 0
        var expiring = false
    }

    let limits: OpeningLimits
    private let read: Read
    private let state = Mutex(State())

    init(limits: OpeningLimits, read: @escaping Read) {
        self.limits = limits
        self.read = read
    }

    /// Asks for `channel`'s log: `done` gets it (`nil` when the store holds nothing for it), or
    /// why it could not be had in time.
    func open(_ channel: ChannelName, done: @escaping Done) {
        let request = OpenRequest(channel: channel, deadline: .now + limits.timeout, done: done)
        let (accepted, startExpiry) = state.withLock { state -> (Bool, Bool) in
            guard state.waiting.count < limits.maxWaiting else { return (false, false) }
            state.waiting.append(request)
            defer { state.expiring = true }
            return (true, !state.expiring)
        }
        guard accepted else {
            Task { done(.failure(StoreError("too many channels are waiting to be opened (\(self.limits.maxWaiting))"))) }
            return
        }
        if startExpiry { Task { await self.expire() } }
        startReads()
    }

    /// Starts reads while there are channels waiting and room for them.
    private func startReads() {
        while let batch = state.withLock({ state -> [OpenRequest]? in
            guard state.reads < limits.maxReads, !state.waiting.isEmpty else { return nil }
            state.reads += 1
            let count = min(limits.maxBatch, state.waiting.count)
            defer { state.waiting.removeFirst(count) }
            return Array(state.waiting.prefix(count))
        }) {
            Task { await self.perform(batch) }
        }
    }

    private func perform(_ batch: [OpenRequest]) async {
        let answered = Answered(batch)
        let read = self.read
        let channels = batch.map(\.channel)
        // The read runs on its own: a store that hangs must not keep its requests waiting past
        // their deadline, only its place in `maxReads`.
        let reading = Task { () -> Result<[ChannelName: StoredLog], StoreError> in
            do throws(StoreError) {
                return .success(try await read(channels))
            } catch {
                return .failure(error)
            }
        }
        // Each request keeps its own deadline: one that waited its turn long is told when its
        // time is up, while those that came just before the read go on waiting for it.
        let timer = Task {
            var next = batch.first?.deadline
            while let deadline = next {
                do {
                    try await Task.sleep(until: deadline, clock: .continuous)
                } catch {
                    return  // the read answered first
                }
                next = answered.answerOverdue(StoreError("the store did not answer within \(self.limits.timeout)"))
            }
        }
        let outcome = await reading.value
        timer.cancel()
        switch outcome {
        case .success(let logs): answered.answerEach { .success(logs[$0]) }
        case .failure(let error): answered.answerAll(.failure(error))
        }
        state.withLock { $0.reads -= 1 }
        startReads()
    }

    /// Fails the waiting requests whose deadline has passed, for as long as any wait.
    private func expire() async {
        while true {
            let (overdue, next) = state.withLock { state -> ([OpenRequest], ContinuousClock.Instant?) in
                let now = ContinuousClock.now
                var overdue: [OpenRequest] = []
                while let first = state.waiting.first, first.deadline <= now { overdue.append(state.waiting.removeFirst()) }
                if state.waiting.isEmpty { state.expiring = false }
                return (overdue, state.waiting.first?.deadline)
            }
            for request in overdue { request.done(.failure(StoreError("the store did not answer within \(limits.timeout)"))) }
            guard let next else { return }
            try? await Task.sleep(until: next, clock: .continuous)
        }
    }
}

/// One channel asked for, and whom to tell.
private struct OpenRequest: Sendable {
    let channel: ChannelName
    let deadline: ContinuousClock.Instant
    let done: ChannelOpener.Done
}

/// The requests of one read, each answered once: by the read, or by its own deadline.
private final class Answered: Sendable {
    /// Not answered yet, earliest deadline first.
    private let pending: Mutex<Deque<OpenRequest>>

    init(_ batch: [OpenRequest]) {
        pending = Mutex(Deque(batch.sorted { $0.deadline < $1.deadline }))
    }

    /// Tells every request whose deadline has passed `error`; the next deadline, if any waits.
    func answerOverdue(_ error: StoreError) -> ContinuousClock.Instant? {
        let now = ContinuousClock.now
        let (overdue, next) = pending.withLock { pending -> ([OpenRequest], ContinuousClock.Instant?) in
            var overdue: [OpenRequest] = []
            while let first = pending.first, first.deadline <= now { overdue.append(pending.removeFirst()) }
            return (overdue, pending.first?.deadline)
        }
        for request in overdue { request.done(.failure(error)) }
        return next
    }

    /// Answers every request not answered yet with `outcome`.
    func answerAll(_ outcome: Result<StoredLog?, StoreError>) {
        answerEach { _ in outcome }
    }

    /// Answers every request not answered yet with what `outcome` gives for its channel.
    func answerEach(_ outcome: (ChannelName) -> Result<StoredLog?, StoreError>) {
        let requests = pending.withLock { pending in
            defer { pending.removeAll() }
            return Array(pending)
        }
        for request in requests { request.done(outcome(request.channel)) }
    }
}
