// SPDX-License-Identifier: Apache-2.0

import DequeModule
import Foundation
import Logging
import NIOCore
import PostgresNIO
import SquallCore
import Synchronization

/// A node's one writer to the database: appends go out in batches, one `squall_append` call —
/// one transaction — at a time, so a node's messages on a channel keep the order they were
/// published in; between batches, the channels appended to are trimmed to the retention.
///
/// Contracts:
/// - **Group commit.** Whatever has queued (up to ``maxBatch`` messages) is one call, answered
///   all at once when it commits.
/// - **Bounded.** At most `maxQueuedBytes` of messages wait; an append past it, or after
///   ``close()``, is refused at once.
/// - **Lost answers.** A batch whose answer was lost with the connection is looked up by its
///   messages' ids once the channels' row locks show its transaction has ended: what is there
///   is committed, the rest failed.
/// - **Trims** run when the writer is idle, and at least every 16 batches under load.
final class PostgresWriter: Sendable {
    /// Most messages one `squall_append` call carries.
    static let maxBatch = 1000

    struct Pending {
        let draft: Draft
        let key: IdempotencyKey?
        let committed: @Sendable (Result<Appended, StoreError>) -> Void
        var cost: Int { draft.payload.count + 256 }
    }

    private struct Queue {
        var items = Deque<Pending>()
        var bytes = 0
        var writing = false
        var closed = false
        /// Channels appended to since their last trim.
        var trims: Set<ChannelName> = []
        var batchesSinceTrim = 0
        var drained: [CheckedContinuation<Void, Never>] = []
    }

    private let link: PostgresLink
    private let retention: Retention
    private let window: Double
    private let maxQueuedBytes: Int
    private let logger: Logger
    private let queue = Mutex(Queue())
    /// Told of each commit, for `/metrics`.
    let observer = Mutex<(any StoreObserver)?>(nil)
    /// Which messages get a `published` event in their transaction, once webhooks want them.
    let publishedEvent = Mutex<(@Sendable (Message) -> LifecycleEvent?)?>(nil)
    /// How many of so many wanted events the outbox has room for (it counts them in).
    private let eventRoom: @Sendable (Int) -> Int

    init(
        link: PostgresLink, retention: Retention, window: Double, maxQueuedBytes: Int, eventRoom: @escaping @Sendable (Int) -> Int = { $0 },
        logger: Logger
    ) {
        self.eventRoom = eventRoom
        self.link = link
        self.retention = retention
        self.window = window
        self.maxQueuedBytes = maxQueuedBytes
        self.logger = logger
    }

    func append(_ pending: Pending) throws(StoreError) {
        let wake = try queue.withLock { queue throws(StoreError) -> Bool in
            guard !queue.closed else { throw StoreError("the store is closed") }
            guard queue.bytes + pending.cost <= maxQueuedBytes else {
                throw StoreError("too many messages are waiting for PostgreSQL (\(queue.bytes) bytes)")
            }
            queue.items.append(pending)
            queue.bytes += pending.cost
            defer { queue.writing = true }
            return !queue.writing
        }
        if wake { link.loop.execute { self.writeNext() } }
    }

    /// Refuses appends from now on, and returns once everything queued is answered.
    func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let idle = queue.withLock { queue -> Bool in
                queue.closed = true
                guard queue.writing else { return true }
                queue.drained.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }

    private enum Work {
        case append([Pending])
        case trim(Set<ChannelName>)
        case idle([CheckedContinuation<Void, Never>])
    }

    /// Sends the next batch or trim; runs on the link's loop, one at a time.
    private func writeNext() {
        let work = queue.withLock { queue -> Work in
            if !queue.trims.isEmpty, queue.items.isEmpty || queue.batchesSinceTrim >= 16 {
                defer {
                    queue.trims = []
                    queue.batchesSinceTrim = 0
                }
                return .trim(queue.trims)
            }
            guard !queue.items.isEmpty else {
                queue.writing = false
                defer { queue.drained = [] }
                return .idle(queue.drained)
            }
            let count = min(queue.items.count, Self.maxBatch)
            let batch = Array(queue.items.prefix(count))
            queue.items.removeFirst(count)
            queue.bytes -= batch.reduce(0) { $0 + $1.cost }
            queue.batchesSinceTrim += 1
            return .append(batch)
        }
        switch work {
        case .idle(let waiting):
            for continuation in waiting { continuation.resume() }
        case .trim(let channels):
            link.query(PostgresQueries.trim(channels, retention: retention)).whenComplete { [self] result in
                if case .failure(let error) = result {
                    // The rows stay until the channel's next trim, or the janitor's sweep by age.
                    logger.warning("PostgreSQL trim failed", metadata: ["error": "\(StoreError(postgres: error, doing: "trim"))"])
                }
                writeNext()
            }
        case .append(let batch):
            // The maker decides which messages get an event (its namespace filter); the
            // database writes the event, once it has given the message its position.
            var events = publishedEvent.withLock { $0 }.map { make in
                batch.map { make($0.draft.message(at: StreamPosition(epoch: "", offset: 0))) != nil }
            }
            // Within the outbox's bound: the rest are not recorded (the outbox counts them dropped).
            if let wanted = events {
                var room = eventRoom(wanted.count { $0 })
                events = wanted.map { want in
                    guard want, room > 0 else { return false }
                    room -= 1
                    return true
                }
            }
            let started = ContinuousClock.now
            link.query(PostgresQueries.append(batch, window: window, events: events)).whenComplete { [self] result in
                if let observer = observer.withLock({ $0 }) {
                    if case .success = result { observer.committed(messages: batch.count, after: .now - started) } else { observer.commitFailed() }
                }
                // Certainly not committed, or committed: answered; else the answer may have
                // been lost after the commit.
                guard case .failure(let error) = result, !PostgresLink.certainlyDidNothing(error) else {
                    answer(batch, result)
                    writeNext()
                    return
                }
                lookUp(batch, after: error)
            }
        }
    }

    /// The connection failed, not the server: the transaction may have committed before the
    /// answer was lost. Taking the channels' row locks first waits for that transaction, if it
    /// still runs, to end; the lookup then sees what it did.
    private func lookUp(_ batch: [Pending], after error: any Error) {
        link.query(
            """
            SELECT 1 FROM squall_channels WHERE name = ANY (\(batch.map(\.draft.channel.rawValue))) ORDER BY name FOR UPDATE
            """
        )
        .flatMap { [link] _ in
            link.query(
                """
                SELECT id, epoch, "offset" FROM squall_messages WHERE id = ANY (\(batch.map(\.draft.id)))
                """
            )
        }
        .whenComplete { [self] lookup in
            answer(batch, committedOf: lookup, failure: StoreError(postgres: error, doing: "append"))
            writeNext()
        }
    }

    /// Answers a batch whose commit's outcome was lost: the messages the database has are
    /// committed, the others failed — all of them if the database cannot be asked either. (A
    /// keyed message that matched an earlier one is not there under its own id, so it shows as
    /// failed; a retry with its key finds the first.)
    private func answer(_ batch: [Pending], committedOf lookup: Result<PostgresQueryResult, any Error>, failure: StoreError) {
        var found: [UUID: StreamPosition] = [:]
        if case .success(let rows) = lookup {
            for row in rows.rows {
                guard let (id, epoch, offset) = try? row.decode((UUID, String, Int64).self) else { continue }
                found[id] = StreamPosition(epoch: epoch, offset: UInt64(clamping: offset))
            }
        }
        for pending in batch {
            let draft = pending.draft
            if let position = found[draft.id] {
                pending.committed(.success(Appended(message: draft.message(at: position), isNew: true)))
            } else {
                pending.committed(.failure(failure))
            }
        }
    }

    /// Answers every message of a batch: the position the database gave it, or the error.
    private func answer(_ batch: [Pending], _ result: Result<PostgresQueryResult, any Error>) {
        var positions: [Int: (position: StreamPosition, id: UUID, time: Double, fresh: Bool?)] = [:]
        var failure: StoreError?
        switch result {
        case .success(let rows):
            do {
                for row in rows.rows {
                    let (ord, epoch, offset, id, time, fresh) = try row.decode((Int64, String, Int64, UUID, Double, Bool?).self)
                    positions[Int(clamping: ord) - 1] = (StreamPosition(epoch: epoch, offset: UInt64(clamping: offset)), id, time, fresh)
                }
            } catch {
                failure = StoreError(postgres: error, doing: "append")
            }
        case .failure(let error):
            failure = StoreError(postgres: error, doing: "append")
        }
        if failure == nil {
            queue.withLock { queue in
                for pending in batch { queue.trims.insert(pending.draft.channel) }
            }
        }
        for (index, pending) in batch.enumerated() {
            if let failure {
                pending.committed(.failure(failure))
            } else if let answer = positions[index] {
                // A key already held answers with the first message's id, time and position;
                // `fresh` NULL says that message's payload was another.
                let draft = pending.draft
                let isNew = answer.fresh == true
                let message = draft.message(at: answer.position, id: answer.id, time: isNew ? draft.time : Date(timeIntervalSince1970: answer.time))
                pending.committed(.success(Appended(message: message, isNew: isNew, isKeyReused: answer.fresh == nil)))
            } else {
                pending.committed(.failure(StoreError("PostgreSQL gave no position for a message")))
            }
        }
    }
}
