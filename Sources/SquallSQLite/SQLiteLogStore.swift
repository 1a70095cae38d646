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
/// - **Retention.** Trims are remembered per channel (the latest only) and run between
///   commits — when no append waits, and at least every ``trimEvery`` batches under load —
///   at most ``trimBatch`` rows a transaction, so deleting never holds up a commit for long;
///   rows of an epoch that ended go with the next trim of their channel.
/// - **Bounded queue.** Messages waiting for their commit hold at most ``maxQueuedBytes``;
///   an append past it throws at once, as does one after ``close()``: nothing is queued.
/// - **Closing.** ``close()`` commits what is queued, then stops the writer thread and closes
///   the database; appends after it fail with ``StoreError``.
/// - **Schema.** `channels(name, epoch, last_offset)` and `messages(channel, epoch, seq, id,
///   time, publisher, binary, payload, idempotency_key)`, created if missing.
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

    private let pool: DatabasePool
    private let queue = Mutex(Queue())
    private let wake = DispatchSemaphore(value: 0)

    private struct Pending {
        let message: Message
        let idempotencyKey: IdempotencyKey?
        let committed: @Sendable (StoreError?) -> Void
        /// What it counts against ``maxQueuedBytes``.
        let size: Int
    }

    private struct Trim {
        let epoch: String
        let offset: UInt64
    }

    private struct Queue {
        var appends: [Pending] = []
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
    /// - Parameter maxQueuedBytes: most bytes of messages waiting for their commit (default
    ///   64 MiB); an append past it fails with ``StoreError`` (`store_unavailable`), so a disk
    ///   slower than the publishers bounds memory instead of growing it.
    /// - Throws: ``StoreError`` if the file cannot be opened or its schema created.
    public init(path: String, durability: Durability = .processCrash, maxQueuedBytes: Int = 64 << 20) throws(StoreError) {
        self.maxQueuedBytes = maxQueuedBytes
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(durability == .powerLoss ? "FULL" : "NORMAL")")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try pool.write { db in
                try db.execute(
                    sql: """
                        CREATE TABLE IF NOT EXISTS channels (name TEXT PRIMARY KEY, epoch TEXT NOT NULL, last_offset INTEGER NOT NULL);
                        CREATE TABLE IF NOT EXISTS messages (
                            channel TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL,
                            time REAL NOT NULL, publisher TEXT, binary INTEGER NOT NULL, payload BLOB NOT NULL,
                            idempotency_key TEXT, UNIQUE (channel, epoch, seq)
                        );
                        """
                )
            }
        } catch {
            throw StoreError("cannot open the SQLite database at \(path): \(error)")
        }
        let thread = Thread { [self] in runWriter() }
        thread.name = "squall-sqlite-writer"
        thread.start()
    }

    /// The messages come back as the unbroken run of offsets that ends at the last one: a row
    /// that is too old or does not decode ends the run, since a log with a hole in it would
    /// resume clients from the wrong place.
    public func restore(_ channel: ChannelName, retention: Retention) throws(StoreError) -> StoredLog? {
        let cutoff = Date().timeIntervalSince1970 - retention.maxAge.inSeconds
        let broken = queue.withLock { $0.brokenEpochs[channel] }
        do {
            return try pool.read { db -> StoredLog? in
                guard let head = try Row.fetchOne(db, sql: "SELECT epoch, last_offset FROM channels WHERE name = ?", arguments: [channel.rawValue])
                else { return nil }
                let epoch: String = head["epoch"]
                // The hub ended this epoch when its commit failed: the channel starts afresh.
                guard epoch != broken else { return nil }
                let lastOffset = UInt64(clamping: head["last_offset"] as Int64)
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT seq, id, time, publisher, binary, payload, idempotency_key FROM messages
                        WHERE channel = ? AND epoch = ? ORDER BY seq DESC LIMIT ?
                        """,
                    arguments: [channel.rawValue, epoch, retention.maxMessages]
                )
                var newestFirst: [Message] = []
                var keys: [UInt64: IdempotencyKey] = [:]
                for row in rows {
                    guard let message = Self.message(row, channel: channel, epoch: epoch),
                        UInt64(newestFirst.count) <= lastOffset, message.offset == lastOffset - UInt64(newestFirst.count),
                        message.time.timeIntervalSince1970 >= cutoff
                    else { break }
                    newestFirst.append(message)
                    if let text = row["idempotency_key"] as String?, let key = try? IdempotencyKey(text) { keys[message.offset] = key }
                }
                return StoredLog(epoch: epoch, lastOffset: lastOffset, messages: newestFirst.reversed(), idempotencyKeys: keys)
            }
        } catch {
            throw StoreError("cannot read channel \(channel) from SQLite: \(error)")
        }
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

    public func trim(_ channel: ChannelName, epoch: String, through offset: UInt64) {
        enqueue { $0.trims[channel] = Trim(epoch: epoch, offset: offset) }
    }

    /// Changes the queue and wakes the writer if it sleeps, under one lock.
    private func enqueue(_ change: (inout Queue) -> Void) {
        let wasIdle = queue.withLock { queue in
            change(&queue)
            return queue.takeIdle()
        }
        if wasIdle { wake.signal() }
    }

    // MARK: - The writer

    private func runWriter() {
        while true {
            let (batch, trims, closing) = queue.withLock { queue -> ([Pending], [ChannelName: Trim], Bool) in
                let batch: [Pending]
                if queue.appends.count <= Self.maxBatch {
                    batch = queue.appends
                    queue.appends = []
                } else {
                    batch = Array(queue.appends.prefix(Self.maxBatch))
                    queue.appends.removeFirst(batch.count)
                }
                queue.queuedBytes -= batch.reduce(0) { $0 + $1.size }
                // Trims wait while appends do, acknowledgements first, but not forever: under
                // load they run every `trimEvery` batches, or the file would only grow.
                if !batch.isEmpty { queue.batchesSinceTrim += 1 }
                let trimNow = queue.appends.isEmpty || queue.batchesSinceTrim >= Self.trimEvery
                let trims = trimNow ? queue.trims : [:]
                if trimNow {
                    queue.trims = [:]
                    queue.batchesSinceTrim = 0
                }
                queue.idle = batch.isEmpty && trims.isEmpty && !queue.closing
                return (batch, trims, queue.closing)
            }
            if batch.isEmpty && trims.isEmpty {
                if closing { break }
                wake.wait()
                continue
            }
            if !batch.isEmpty { commit(batch) }
            if !trims.isEmpty { delete(trims) }
        }
        try? pool.close()
        let closers = queue.withLock { queue in
            queue.closed = true
            defer { queue.closers = [] }
            return queue.closers
        }
        for closer in closers { closer.resume() }
    }

    /// Commits `pending`, but for messages of an epoch that lost a commit: those fail too
    /// (`Queue.brokenEpochs`).
    private func commit(_ pending: [Pending]) {
        let brokenEpochs = queue.withLock { $0.brokenEpochs }
        var batch: [Pending] = []
        batch.reserveCapacity(pending.count)
        for entry in pending {
            if brokenEpochs[entry.message.channel] == entry.message.position.epoch {
                entry.committed(StoreError("an earlier message of this channel's epoch was not committed"))
            } else {
                batch.append(entry)
            }
        }
        guard !batch.isEmpty else { return }
        var error: StoreError?
        do {
            let heads = try pool.write { db -> [ChannelName: StreamPosition] in
                let insert = try db.cachedStatement(
                    sql: "INSERT INTO messages (channel, epoch, seq, id, time, publisher, binary, payload, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                )
                var heads: [ChannelName: StreamPosition] = [:]
                for pending in batch {
                    let message = pending.message
                    try insert.execute(arguments: [
                        message.channel.rawValue, message.position.epoch, Int64(truncatingIfNeeded: message.offset), message.id.text,
                        message.time.timeIntervalSince1970, message.publisher?.text, message.payload.kind == .binary,
                        Data(message.payload.bytes.readableBytesView), pending.idempotencyKey?.rawValue,
                    ])
                    heads[message.channel] = message.position
                }
                let head = try db.cachedStatement(
                    sql: """
                        INSERT INTO channels (name, epoch, last_offset) VALUES (?, ?, ?)
                        ON CONFLICT (name) DO UPDATE SET epoch = excluded.epoch, last_offset = excluded.last_offset
                        """
                )
                for (channel, position) in heads {
                    try head.execute(arguments: [channel.rawValue, position.epoch, Int64(truncatingIfNeeded: position.offset)])
                }
                return heads
            }
            if !brokenEpochs.isEmpty {
                queue.withLock { queue in
                    for (channel, position) in heads where queue.brokenEpochs[channel].map({ $0 != position.epoch }) == true {
                        queue.brokenEpochs[channel] = nil
                    }
                }
            }
        } catch let failure {
            error = StoreError("SQLite commit failed: \(failure)")
            queue.withLock { queue in
                for entry in batch { queue.brokenEpochs[entry.message.channel] = entry.message.position.epoch }
            }
        }
        for entry in batch { entry.committed(error) }
    }

    /// Deletes, per channel, rows up to the trimmed offset and rows of other epochs: at most
    /// ``trimBatch`` rows in one transaction; channels with more left are trimmed on a later
    /// pass. A failed pass is dropped: the hub trims again as retention moves on.
    private func delete(_ trims: [ChannelName: Trim]) {
        let unfinished = try? pool.write { db -> [ChannelName: Trim] in
            var budget = Self.trimBatch
            var unfinished: [ChannelName: Trim] = [:]
            for (channel, trim) in trims {
                guard budget > 0 else {
                    unfinished[channel] = trim
                    continue
                }
                try db.execute(
                    sql: """
                        DELETE FROM messages WHERE rowid IN (
                            SELECT rowid FROM messages WHERE channel = ? AND (epoch <> ? OR seq <= ?) LIMIT ?
                        )
                        """,
                    arguments: [channel.rawValue, trim.epoch, Int64(truncatingIfNeeded: trim.offset), budget]
                )
                budget -= db.changesCount
                if budget == 0 { unfinished[channel] = trim }
            }
            return unfinished
        }
        guard let unfinished, !unfinished.isEmpty else { return }
        queue.withLock { queue in
            for (channel, trim) in unfinished where queue.trims[channel] == nil { queue.trims[channel] = trim }
        }
    }

    private static func message(_ row: Row, channel: ChannelName, epoch: String) -> Message? {
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
