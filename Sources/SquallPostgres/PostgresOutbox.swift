// SPDX-License-Identifier: Apache-2.0

import DequeModule
import Foundation
import Logging
import NIOCore
import PostgresNIO
import SquallCore
import Synchronization

/// The outbox of lifecycle events in the database every node shares: events recorded on any
/// node wait in `squall_webhook_outbox` until some node has delivered them, each leased by the
/// node that takes it (`FOR UPDATE SKIP LOCKED`), so that one node delivers each.
///
/// Contracts: recorded events are queued and inserted in batches on the outbox's own link, in
/// the order recorded; `published` events are the writer's, in the message's own statement. At
/// most `maxEvents` wait (counted when due events are read, and as they are recorded); dead
/// letters are kept for 7 days and at most 100,000.
final class PostgresOutbox: Sendable {
    /// Most events one insert carries.
    static let maxBatch = 1000

    private struct State {
        var queued = Deque<LifecycleEvent>()
        var writing = false
        var closed = false
        /// Rows in the table when last counted, plus those recorded since.
        var count = 0
    }

    private let link: PostgresLink
    private let maxEvents: Int
    private let droppedTotal = Atomic<Int>(0)
    private let logger: Logger
    private let state = Mutex(State())

    init(link: PostgresLink, maxEvents: Int, logger: Logger) {
        self.link = link
        self.maxEvents = maxEvents
        self.logger = logger
    }

    /// Events refused (the outbox full) or lost (an insert failed).
    var dropped: Int { droppedTotal.load(ordering: .relaxed) }

    /// Room for up to `wanted` `published` events the writer records in a message's statement:
    /// counted in now, the rest counted dropped.
    func reserve(_ wanted: Int) -> Int {
        guard wanted > 0 else { return 0 }
        let granted = state.withLock { state in
            let granted = max(0, min(wanted, maxEvents - state.count))
            state.count += granted
            return granted
        }
        if granted < wanted { droppedTotal.add(wanted - granted, ordering: .relaxed) }
        return granted
    }

    func record(_ events: [LifecycleEvent]) throws(StoreError) {
        guard !events.isEmpty else { return }
        let start = try state.withLock { state throws(StoreError) -> Bool in
            guard !state.closed else { throw StoreError("the PostgreSQL store is closed") }
            guard state.count + events.count <= maxEvents else { throw StoreError("the webhook outbox holds \(maxEvents) events, its limit") }
            state.queued.append(contentsOf: events)
            state.count += events.count
            defer { state.writing = true }
            return !state.writing
        }
        if start { link.loop.execute { self.writeNext() } }
    }

    private func writeNext() {
        let batch = state.withLock { state -> [LifecycleEvent] in
            let batch = Array(state.queued.prefix(Self.maxBatch))
            state.queued.removeFirst(batch.count)
            if batch.isEmpty { state.writing = false }
            return batch
        }
        guard !batch.isEmpty else { return }
        let ids = batch.map(\.id)
        let types = batch.map(\.type)
        let times = batch.map(\.time.timeIntervalSince1970)
        let namespaces = batch.map { $0.namespace ?? "" }
        let bodies = batch.map(\.body)
        link.query(
            """
            INSERT INTO squall_webhook_outbox (id, type, time, namespace, body, next_at)
            SELECT * , t FROM unnest(\(ids)::uuid[], \(types)::text[], \(times)::double precision[], \(namespaces)::text[], \(bodies)::bytea[])
                AS e(id, type, t, namespace, body)
            ON CONFLICT (id) DO NOTHING
            """
        ).whenComplete { [self] result in
            if case .failure(let error) = result {
                // Not retried: the events are lost, as a node killed before the insert loses them.
                logger.error(
                    "PostgreSQL could not record lifecycle events", metadata: ["error": "\(StoreError(postgres: error, doing: "record events"))"])
                state.withLock { $0.count -= batch.count }
                droppedTotal.add(batch.count, ordering: .relaxed)
            }
            writeNext()
        }
    }

    func due(limit: Int, lease: Duration) async throws(StoreError) -> [OutboxEntry] {
        do {
            let rows = try await link.query(
                """
                WITH due AS (
                    SELECT id FROM squall_webhook_outbox WHERE next_at <= extract(epoch FROM clock_timestamp())
                    ORDER BY next_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                )
                UPDATE squall_webhook_outbox o SET next_at = extract(epoch FROM clock_timestamp()) + \(lease.inSeconds)
                FROM due WHERE o.id = due.id
                RETURNING o.id, o.type, o.time, o.namespace, o.body, o.attempts, o.delivered_to, (SELECT count(*) FROM squall_webhook_outbox)
                """
            ).get().rows
            var entries: [OutboxEntry] = []
            for row in rows {
                let (id, type, time, namespace, body, attempts, delivered, count) = try row.decode(
                    (UUID, String, Double, String?, ByteBuffer, Int32, [String], Int64).self)
                state.withLock { $0.count = Int(count) + $0.queued.count }
                let event = LifecycleEvent(id: id, type: type, time: Date(timeIntervalSince1970: time), namespace: namespace, body: body)
                entries.append(OutboxEntry(event: event, attempts: Int(attempts), deliveredTo: Set(delivered)))
            }
            return entries
        } catch {
            throw StoreError(postgres: error, doing: "read the webhook outbox")
        }
    }

    func delivered(_ id: UUID) async throws(StoreError) {
        try await settle("settle a webhook", "DELETE FROM squall_webhook_outbox WHERE id = \(id)")
    }

    func retry(_ id: UUID, deliveredTo: Set<String>, at retryAt: Date) async throws(StoreError) {
        let done = deliveredTo.sorted()
        let at = retryAt.timeIntervalSince1970
        do {
            _ = try await link.query(
                "UPDATE squall_webhook_outbox SET attempts = attempts + 1, next_at = \(at), delivered_to = \(done)::text[] WHERE id = \(id)"
            ).get()
        } catch {
            throw StoreError(postgres: error, doing: "reschedule a webhook")
        }
    }

    func deadLetter(_ id: UUID, reason: String) async throws(StoreError) {
        let why = String(reason.prefix(500))
        try await settle(
            "move a webhook to the dead letters",
            """
            WITH moved AS (DELETE FROM squall_webhook_outbox WHERE id = \(id) RETURNING id, type, time, body),
            kept AS (
                INSERT INTO squall_webhook_dead (id, type, time, body, reason, failed_at)
                SELECT id, type, time, body, \(why), extract(epoch FROM clock_timestamp()) FROM moved
                ON CONFLICT (id) DO NOTHING
            )
            DELETE FROM squall_webhook_dead WHERE failed_at < extract(epoch FROM clock_timestamp()) - 604800
                OR id IN (SELECT id FROM squall_webhook_dead ORDER BY failed_at DESC OFFSET 100000)
            """)
    }

    var depth: Int { state.withLock { $0.count } }

    func close() {
        state.withLock { $0.closed = true }
    }

    private func settle(_ doing: String, _ query: PostgresQuery) async throws(StoreError) {
        do {
            _ = try await link.query(query).get()
            state.withLock { $0.count = max(0, $0.count - 1) }
        } catch {
            throw StoreError(postgres: error, doing: doing)
        }
    }
}
