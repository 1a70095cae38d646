// SPDX-License-Identifier: Apache-2.0

import Dispatch
import Foundation
import GRDB
import NIOCore
import SquallCore
import Synchronization

/// A ``LogStore`` in one SQLite database file (GRDB), for a single node: history, positions and
/// epochs survive a restart.
///
/// Contracts:
/// - **Group commit.** Appends queue in memory and one writer thread commits whatever has
///   queued, up to ``maxBatch`` messages, in one transaction: publishes that arrive together
///   cost one commit (one fsync at most). `committed` runs on that thread, in queue order.
/// - **Durability.** WAL journal. ``Durability/processCrash`` (`synchronous=NORMAL`, the
///   default): a committed message survives the process being killed; a power loss may take
///   the last commits. ``Durability/powerLoss`` (`synchronous=FULL`): it survives that too.
/// - **No gap.** Once a commit fails, no later message of the same channel and epoch is
///   committed (each fails too): the hub starts a new epoch, and the stored log never holds
///   offsets after a hole.
/// - **Reads hold no thread.** ``restore(_:retention:)`` reads on GRDB's reader queues while
///   its caller is suspended, many channels in one read transaction.
/// - **Retention.** Trims are remembered per channel (the latest only) and run between
///   commits — when no append waits, and at least every ``trimEvery`` batches under load —
///   at most ``trimBatch`` rows a transaction, so deleting never holds up a commit for long;
///   rows of an epoch that ended go with the next trim of their channel. Besides, every
///   ``sweepInterval`` the writer deletes messages past the retention's age and forgets
///   channels whose last message is older than its meta TTL, in the same small batches, whether
///   or not any channel is open: the file holds what retention keeps, after a restart too.
/// - **Bounded queue.** Messages waiting for their commit hold at most ``maxQueuedBytes``;
///   an append past it throws at once, as does one after ``close()``: nothing is queued.
/// - **Closing.** ``close()`` commits what is queued, then stops the writer thread and closes
///   the database; appends after it fail with ``StoreError``.
/// - **Schema.** ``SQLiteSchema``, created or brought up to date when the file is opened.
public final class SQLiteLogStore: LogStore {
    /// What a committed message survives.
    public enum Durability: String, Sendable, CaseIterable {
        /// A crash or `kill -9` of the process (`PRAGMA synchronous=NORMAL` in WAL mode).
        case processCrash = "normal"
        /// A power loss or an operating-system crash too (`PRAGMA synchronous=FULL`): one
        /// fsync per commit.
        case powerLoss = "full"
    }

    /// Most messages committed in one transaction.
    public static let maxBatch = 4096
    /// Most rows one retention transaction deletes.
    public static let trimBatch = 1000
    /// Under sustained load, retention runs after every this many commit batches.
    public static let trimEvery = 16
    /// What a queued message counts besides its payload: its row's other columns.
    static let rowOverhead = 128

    /// Most bytes of messages waiting to be committed; past it an append fails at once.
    public let maxQueuedBytes: Int
    /// Most lifecycle events the outbox holds; past it new events are refused.
    public let maxOutboxEvents: Int
    /// Events lost with a failed commit, or not recorded for want of room.
    let droppedEventTotal = Atomic<Int>(0)
    /// Told of each commit, for `/metrics`.
    let observer = Mutex<(any StoreObserver)?>(nil)
    /// Makes the `published` event of each message committed, once webhooks want them.
    let publishedEvent = Mutex<(@Sendable (Message) -> LifecycleEvent?)?>(nil)
    /// What the file keeps, by age and meta TTL, whichever channels are open.
    public let retention: Retention

    let pool: DatabasePool
    let queue = Mutex(Queue())
    /// Wakes the writer thread, the only one that waits on it.
    let wake = DispatchSemaphore(value: 0)  // blocking-ok: only the writer thread waits on it

    struct Pending {
        let message: Message
        let idempotencyKey: IdempotencyKey?
        let committed: @Sendable (StoreError?) -> Void
        /// What it counts against ``maxQueuedBytes``.
        let size: Int
    }

    struct Trim {
        let epoch: String
        let offset: UInt64
    }

    struct Queue {
        var appends: [Pending] = []
        /// Lifecycle events for the next commit.
        var events: [LifecycleEvent] = []
        /// Events in the outbox table and queued for it, against ``maxOutboxEvents``.
        var outboxCount = 0
        /// The bytes of `appends`, payloads and a row's worth each.
        var queuedBytes = 0
        var trims: [ChannelName: Trim] = [:]
        /// Commit batches since trims last ran.
        var batchesSinceTrim = 0
        /// Per channel, the epoch whose commit failed: the hub ends that epoch, so none of its
        /// later messages may be committed (a restart would find them after a gap) and a
        /// restore must not bring it back. Cleared once the channel commits in another epoch;
        /// one entry per channel at most.
        var brokenEpochs: [ChannelName: String] = [:]
        /// Whether the writer sleeps on `wake` and must be woken.
        var idle = false
        /// ``close()`` was called: appends fail, and the writer stops once the queue is empty.
        var closing = false
        /// The writer has stopped.
        var closed = false
        /// ``close()`` calls waiting for the writer to stop.
        var closers: [CheckedContinuation<Void, Never>] = []

        /// Whether the writer sleeps, and must be woken; it is awake from here on.
        mutating func takeIdle() -> Bool {
            defer { idle = false }
            return idle
        }
    }

    /// Opens (creating if needed) the database at `path` and starts its writer thread.
    /// - Parameters:
    ///   - retention: what the file keeps by age and meta TTL (its count bound follows the hub's
    ///     trims). Give it the hub's.
    ///   - maxQueuedBytes: most bytes of messages waiting for their commit (default 64 MiB);
    ///     an append past it fails with ``StoreError`` (`store_unavailable`), so a disk slower
    ///     than the publishers bounds memory instead of growing it.
    ///   - maxOutboxEvents: most lifecycle events the outbox holds (default 1,000,000).
    /// - Throws: ``StoreError`` if the file cannot be opened or its schema created.
    public init(
        path: String, durability: Durability = .processCrash, retention: Retention = Retention(), maxQueuedBytes: Int = 64 << 20,
        maxOutboxEvents: Int = 1_000_000
    ) throws(StoreError) {
        self.maxQueuedBytes = maxQueuedBytes
        self.maxOutboxEvents = maxOutboxEvents
        self.retention = retention
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(durability == .powerLoss ? "FULL" : "NORMAL")")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            let events = try pool.write { db in  // blocking-ok: at start, before any request
                try SQLiteSchema.migrate(db)
                // One process uses the file: leases an earlier run took (it was killed while
                // delivering) are void, and what they held is due now.
                try db.execute(sql: "UPDATE webhook_outbox SET next_at = min(next_at, ?)", arguments: [Date().timeIntervalSince1970])
                return try Int.fetchOne(db, sql: "SELECT count(*) FROM webhook_outbox") ?? 0
            }
            queue.withLock { $0.outboxCount = events }
        } catch {
            throw StoreError("cannot open the SQLite database at \(path): \(error)")
        }
        let thread = Thread { [self] in runWriter() }
        thread.name = "squall-sqlite-writer"
        thread.start()
    }

    /// Each channel's messages come back as the unbroken run of offsets that ends at the last
    /// one: a row that is too old or does not decode ends the run, since a log with a hole in
    /// it would resume clients from the wrong place. A channel whose epoch the hub ended (a
    /// failed commit) comes back in a new epoch that is not a first one.
    public func restore(_ channels: [ChannelName], retention: Retention) async throws(StoreError) -> [ChannelName: StoredLog] {
        let cutoff = Date().timeIntervalSince1970 - retention.maxAge.inSeconds
        let broken = queue.withLock { $0.brokenEpochs }
        do {
            return try await pool.read { db -> [ChannelName: StoredLog] in
                var logs: [ChannelName: StoredLog] = [:]
                for channel in channels {
                    logs[channel] = try Self.restore(channel, cutoff: cutoff, limit: retention.maxMessages, broken: broken[channel], in: db)
                }
                return logs
            }
        } catch {
            throw StoreError("cannot read channels from SQLite: \(error)")
        }
    }

    private static func restore(_ channel: ChannelName, cutoff: Double, limit: Int, broken: String?, in db: Database) throws -> StoredLog? {
        guard let head = try Row.fetchOne(db, sql: "SELECT epoch, last_offset, is_first FROM channels WHERE name = ?", arguments: [channel.rawValue])
        else { return nil }
        let epoch: String = head["epoch"]
        // The hub ended this epoch when its commit failed: the channel starts afresh.
        guard epoch != broken else { return StoredLog(epoch: StreamPosition.newEpoch(), lastOffset: 0, messages: [], isFirst: false) }
        let lastOffset = UInt64(clamping: head["last_offset"] as Int64)
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT seq, id, time, publisher, binary, payload, idempotency_key FROM messages
                WHERE channel = ? AND epoch = ? ORDER BY seq DESC LIMIT ?
                """,
            arguments: [channel.rawValue, epoch, limit]
        )
        var newestFirst: [Message] = []
        var keys: [UInt64: IdempotencyKey] = [:]
        for row in rows {
            guard let message = message(row, channel: channel, epoch: epoch),
                UInt64(newestFirst.count) <= lastOffset, message.offset == lastOffset - UInt64(newestFirst.count),
                message.time.timeIntervalSince1970 >= cutoff
            else { break }
            newestFirst.append(message)
            if let text = row["idempotency_key"] as String?, let key = try? IdempotencyKey(text) { keys[message.offset] = key }
        }
        return StoredLog(epoch: epoch, lastOffset: lastOffset, messages: newestFirst.reversed(), idempotencyKeys: keys, isFirst: head["is_first"] as Bool)
    }

    public func append(
        _ message: Message,
        idempotencyKey: IdempotencyKey?,
        committed: @escaping @Sendable (StoreError?) -> Void
    ) throws(StoreError) {
        let size = message.payload.bytes.readableBytes + Self.rowOverhead
        let outcome: Result<Bool, StoreError> = queue.withLock { queue in
            if queue.closing { return .failure(StoreError("the SQLite store is closed")) }
            if queue.queuedBytes + size > maxQueuedBytes, !queue.appends.isEmpty {
                return .failure(StoreError("the SQLite store has \(queue.queuedBytes) bytes waiting to be committed, its limit"))
            }
            queue.appends.append(Pending(message: message, idempotencyKey: idempotencyKey, committed: committed, size: size))
            queue.queuedBytes += size
            return .success(queue.takeIdle())
        }
        if try outcome.get() { wake.signal() }
    }

    public func close() async {
        await withCheckedContinuation { (closer: CheckedContinuation<Void, Never>) in
            let (closed, wasIdle) = queue.withLock { queue in
                queue.closing = true
                if !queue.closed { queue.closers.append(closer) }
                return (queue.closed, queue.takeIdle())
            }
            if closed { closer.resume() } else if wasIdle { wake.signal() }
        }
    }

    public func observe(_ observer: any StoreObserver) {
        self.observer.withLock { $0 = observer }
    }

    public func trim(_ channel: ChannelName, epoch: String, through offset: UInt64) {
        let wasIdle = queue.withLock { queue in
            queue.trims[channel] = Trim(epoch: epoch, offset: offset)
            return queue.takeIdle()
        }
        if wasIdle { wake.signal() }
    }

    static func message(_ row: Row, channel: ChannelName, epoch: String) -> Message? {
        let seq: Int64 = row["seq"]
        guard let id = UUID(uuidString: row["id"] as String) else { return nil }
        let publisher = (row["publisher"] as String?).flatMap(UUID.init(uuidString:))
        let data: Data = row["payload"]
        let bytes = ByteBuffer(bytes: data)
        let binary: Bool = row["binary"]
        return Message(
            channel: channel,
            position: StreamPosition(epoch: epoch, offset: UInt64(clamping: seq)),
            id: id,
            time: Date(timeIntervalSince1970: row["time"]),
            publisher: publisher,
            payload: binary ? .binary(bytes) : .text(utf8: bytes)
        )
    }
}
