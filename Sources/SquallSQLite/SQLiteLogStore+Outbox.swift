// SPDX-License-Identifier: Apache-2.0

import Foundation
import GRDB
import NIOCore
import SquallCore

/// The outbox of lifecycle events in the same file: events are committed by the writer with the
/// messages it commits (a message's `published` event in its own transaction), read and settled
/// on GRDB's queues while the caller is suspended.
///
/// Contracts: at most ``maxOutboxEvents`` wait (more are refused); dead letters are kept for
/// ``deadLetterAge`` and at most ``maxDeadLetters`` of them.
extension SQLiteLogStore: EventOutbox {
    /// How long a dead letter is kept.
    public static let deadLetterAge: Double = 7 * 24 * 3600
    /// Most dead letters kept; the oldest go first.
    public static let maxDeadLetters = 100_000

    public var isDurable: Bool { true }

    public func record(_ events: [LifecycleEvent]) throws(StoreError) {
        guard !events.isEmpty else { return }
        let outcome: Result<Bool, StoreError> = queue.withLock { queue in
            if queue.closing { return .failure(StoreError("the SQLite store is closed")) }
            guard queue.outboxCount + events.count <= maxOutboxEvents else {
                return .failure(StoreError("the webhook outbox holds \(maxOutboxEvents) events, its limit"))
            }
            queue.events.append(contentsOf: events)
            queue.outboxCount += events.count
            return .success(queue.takeIdle())
        }
        if try outcome.get() { wake.signal() }
    }

    public func recordPublished(_ event: @escaping @Sendable (Message) -> LifecycleEvent?) {
        publishedEvent.withLock { $0 = event }
    }

    /// On the writer thread, in its transaction: the events' rows; one already there is kept.
    static func insert(_ events: [LifecycleEvent], into db: Database) throws {
        guard !events.isEmpty else { return }
        let insert = try db.cachedStatement(
            sql: "INSERT OR IGNORE INTO webhook_outbox (id, type, time, namespace, body, next_at) VALUES (?, ?, ?, ?, ?, ?)")
        for event in events {
            try insert.execute(arguments: [
                event.id.uuidString, event.type, event.time.timeIntervalSince1970, event.namespace, Data(event.body.readableBytesView),
                event.time.timeIntervalSince1970,
            ])
        }
    }

    public func due(limit: Int, lease: Duration) async throws(StoreError) -> [OutboxEntry] {
        let now = Date().timeIntervalSince1970
        do {
            return try await pool.write { db -> [OutboxEntry] in
                let rows = try Row.fetchAll(
                    db, sql: "SELECT id, type, time, namespace, body, attempts, delivered_to FROM webhook_outbox WHERE next_at <= ? ORDER BY next_at LIMIT ?",
                    arguments: [now, limit])
                let leased = try db.cachedStatement(sql: "UPDATE webhook_outbox SET next_at = ? WHERE id = ?")
                return try rows.compactMap { row -> OutboxEntry? in
                    let id: String = row["id"]
                    try leased.execute(arguments: [now + lease.inSeconds, id])
                    guard let uuid = UUID(uuidString: id) else { return nil }
                    let body: Data = row["body"]
                    let event = LifecycleEvent(
                        id: uuid, type: row["type"], time: Date(timeIntervalSince1970: row["time"]), namespace: row["namespace"], body: ByteBuffer(bytes: body))
                    return OutboxEntry(event: event, attempts: row["attempts"], deliveredTo: Self.urls(row["delivered_to"]))
                }
            }
        } catch {
            throw StoreError("cannot read the webhook outbox: \(error)")
        }
    }

    public func delivered(_ id: UUID) async throws(StoreError) {
        try await settle("settle a webhook") { db in
            try db.execute(sql: "DELETE FROM webhook_outbox WHERE id = ?", arguments: [id.uuidString])
            return db.changesCount
        }
    }

    public func retry(_ id: UUID, deliveredTo: Set<String>, at retryAt: Date) async throws(StoreError) {
        let done = String(decoding: (try? JSONSerialization.data(withJSONObject: deliveredTo.sorted())) ?? Data("[]".utf8), as: UTF8.self)
        do {
            try await pool.write { db in
                try db.execute(
                    sql: "UPDATE webhook_outbox SET attempts = attempts + 1, next_at = ?, delivered_to = ? WHERE id = ?",
                    arguments: [retryAt.timeIntervalSince1970, done, id.uuidString])
            }
        } catch {
            throw StoreError("cannot reschedule a webhook: \(error)")
        }
    }

    public func deadLetter(_ id: UUID, reason: String) async throws(StoreError) {
        let now = Date().timeIntervalSince1970
        try await settle("move a webhook to the dead letters") { db in
            try db.execute(
                sql: """
                    INSERT OR REPLACE INTO webhook_dead (id, type, time, body, reason, failed_at)
                    SELECT id, type, time, body, ?, ? FROM webhook_outbox WHERE id = ?
                    """, arguments: [String(reason.prefix(500)), now, id.uuidString])
            try db.execute(sql: "DELETE FROM webhook_outbox WHERE id = ?", arguments: [id.uuidString])
            let removed = db.changesCount
            try db.execute(
                sql: """
                    DELETE FROM webhook_dead WHERE failed_at < ?
                    OR id IN (SELECT id FROM webhook_dead ORDER BY failed_at DESC LIMIT -1 OFFSET ?)
                    """, arguments: [now - Self.deadLetterAge, Self.maxDeadLetters])
            return removed
        }
    }

    public var droppedEvents: Int { droppedEventTotal.load(ordering: .relaxed) }

    public func depth() async -> Int {
        queue.withLock { $0.outboxCount - $0.events.count }
    }

    /// Runs `change`, which returns how many outbox rows it removed, and counts them out.
    private func settle(_ doing: String, _ change: @escaping @Sendable (Database) throws -> Int) async throws(StoreError) {
        do {
            let removed = try await pool.write(change)
            if removed > 0 { queue.withLock { $0.outboxCount -= removed } }
        } catch {
            throw StoreError("cannot \(doing): \(error)")
        }
    }

    private static func urls(_ text: String) -> Set<String> {
        guard let data = text.data(using: .utf8), let list = try? JSONSerialization.jsonObject(with: data) as? [String] else { return [] }
        return Set(list)
    }
}
