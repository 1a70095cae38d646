// SPDX-License-Identifier: Apache-2.0

import Synchronization

/// The bounded queue of payloads waiting to be written to one connection.
///
/// Producers (broadcasts, handlers) `push` without ever waiting; one consumer, the
/// connection's writer, takes everything pending at once with `next()` so that it can write
/// a whole batch per turn. Contracts:
/// - **Order.** Payloads come out in the order they were pushed.
/// - **Bounded.** A push that would take the queue past `Limits.maxMessages` or
///   `Limits.maxBytes` is refused, the pending payloads are dropped and the outbox closes with
///   `Disconnect.slowConsumer`: one slow client costs at most its limits in memory and never
///   delays anyone else. An empty queue always accepts one payload, however large, so the byte
///   limit never refuses a single message that the message-size limit allowed.
/// - **One ending.** The first `close` wins. After it, pushes are refused (`.closed`) and the
///   consumer receives the remaining payloads (unless they were discarded), then the
///   `Disconnect` once, then `nil`.
public final class Outbox: Sendable {
    /// How much may wait for one connection.
    public struct Limits: Sendable, Hashable {
        /// Most payloads that may wait. Default 1,024.
        public var maxMessages: Int
        /// Most bytes of payload that may wait. Default 16 MiB.
        public var maxBytes: Int

        /// Limits with the given bounds; a bound below 1 is taken as 1.
        public init(maxMessages: Int = 1024, maxBytes: Int = 16 << 20) {
            self.maxMessages = max(1, maxMessages)
            self.maxBytes = max(1, maxBytes)
        }
    }

    /// What became of a push.
    public enum PushResult: Sendable, Hashable {
        /// The payload waits to be written.
        case queued
        /// The push would have passed a limit: the outbox is now closed with
        /// `Disconnect.slowConsumer` and its pending payloads are dropped.
        case overflowed
        /// The outbox was already closed; the payload was dropped.
        case closed
    }

    /// What the consumer takes in one `next()`.
    public enum Batch: Sendable, Hashable {
        /// Payloads to write, oldest first.
        case payloads([Payload])
        /// The outbox closed: send this to the client, then stop.
        case disconnect(Disconnect)
    }

    /// A batch taken for a waiting consumer under the lock, resumed after it is released.
    private struct Handoff {
        let waiter: CheckedContinuation<Batch?, Never>
        let batch: Batch?

        func deliver() { waiter.resume(returning: batch) }
    }

    private struct State {
        var pending: [Payload] = []
        var pendingBytes = 0
        var ending: Disconnect?
        var endingTaken = false
        var finished = false
        var waiter: CheckedContinuation<Batch?, Never>?

        /// Takes what `next()` should return now, or `.none` when it has to wait.
        mutating func take() -> Batch?? {
            if !pending.isEmpty {
                defer {
                    pending = []
                    pendingBytes = 0
                }
                return .some(.payloads(pending))
            }
            if let ending, !endingTaken {
                endingTaken = true
                return .some(.disconnect(ending))
            }
            if endingTaken || finished { return .some(nil) }
            return .none
        }

        /// If the consumer is waiting and something is ready, takes both for delivery.
        mutating func handoff() -> Handoff? {
            guard waiter != nil, let ready = take(), let waiter = waiter.take() else { return nil }
            return Handoff(waiter: waiter, batch: ready)
        }
    }

    /// The bounds this outbox enforces.
    public let limits: Limits
    private let state = Mutex(State())

    /// An empty, open outbox.
    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Queues `payload` for the consumer without waiting.
    @discardableResult
    public func push(_ payload: Payload) -> PushResult {
        let (result, handoff) = state.withLock { state -> (PushResult, Handoff?) in
            guard state.ending == nil, !state.finished else { return (.closed, nil) }
            let bytes = state.pendingBytes + payload.count
            if !state.pending.isEmpty, state.pending.count >= limits.maxMessages || bytes > limits.maxBytes {
                state.pending = []
                state.pendingBytes = 0
                state.ending = .slowConsumer
            } else {
                state.pending.append(payload)
                state.pendingBytes = bytes
            }
            return (state.ending == nil ? .queued : .overflowed, state.handoff())
        }
        handoff?.deliver()
        return result
    }

    /// Closes the outbox with `disconnect`, unless it is closed already.
    ///
    /// - Parameter discardingPending: drop what is still queued (the client is too slow or
    ///   gone) instead of delivering it before the disconnect.
    /// - Returns: `true` if this call closed the outbox.
    @discardableResult
    public func close(_ disconnect: Disconnect, discardingPending: Bool = false) -> Bool {
        let (closed, handoff) = state.withLock { state -> (Bool, Handoff?) in
            guard state.ending == nil, !state.finished else { return (false, nil) }
            state.ending = disconnect
            if discardingPending {
                state.pending = []
                state.pendingBytes = 0
            }
            return (true, state.handoff())
        }
        handoff?.deliver()
        return closed
    }

    /// Ends the outbox with no disconnect to send (the connection is already gone):
    /// pending payloads are dropped and the consumer's `next()` returns `nil`.
    public func finish() {
        let waiter = state.withLock { state in
            state.finished = true
            state.pending = []
            state.pendingBytes = 0
            return state.waiter.take()
        }
        waiter?.resume(returning: nil)
    }

    /// The disconnect this outbox was closed with, if any.
    public var disconnect: Disconnect? {
        state.withLock { $0.ending }
    }

    /// How many payloads wait now.
    public var pendingCount: Int {
        state.withLock { $0.pending.count }
    }

    /// Waits for, and takes, everything pending; `nil` once the outbox is over (or the
    /// calling task is cancelled). Only one task may consume an outbox.
    public func next() async -> Batch? {
        if let ready = state.withLock({ $0.take() }) { return ready }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Batch?, Never>) in
                let ready: Batch?? = state.withLock { state in
                    if let ready = state.take() { return ready }
                    if Task.isCancelled { return .some(nil) }
                    precondition(state.waiter == nil, "an Outbox has one consumer")  // trap-ok: a second consumer is a programming error
                    state.waiter = continuation
                    return .none
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiter.take() }
            waiter?.resume(returning: nil)
        }
    }

}
