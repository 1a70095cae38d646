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
/// - **Retention.** Trims are remembered per channel (the latest only) and run after commits,
///   ``trimBatch`` rows a statement, so deleting never holds up a commit for long; rows of an
///   epoch that ended go with the next trim of their channel.
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
    /// Most rows one retention statement deletes.
    public static let trimBatch = 1000

    private let pool: DatabasePool
    private let queue = Mutex(Queue())
    private let wake = DispatchSemaphore(value: 0)

    private struct Pending {
        let message: Message
        let idempotencyKey: IdempotencyKey?
        let committed: @Sendable (StoreError?) -> Void
    }

    private struct Trim {
        let epoch: String
        let offset: UInt64
    }

    private struct Queue {
        var appends: [Pending] = []
        var trims: [ChannelName: Trim] = [:]
        /// Whether the writer sleeps on `wake` and must be woken.
        var idle = false
        /// ``close()`` was called: appends fail, and the writer stops once the queue is empty.
        var closing = false
        /// The writer has stopped.
        var closed = false
        /// ``close()`` calls waiting for the writer to stop.
        var closers: [CheckedContinuation<Void, Never>] = []
    }

    /// Opens (creating if needed) the database at `path` and starts its writer thread.
    /// - Throws: ``StoreError`` if the file cannot be opened or its schema created.
    public init(path: String, durability: Durability = .processCrash) throws(StoreError) {
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

    public func restore(_ channel: ChannelName, retention: Retention) throws(StoreError) -> StoredLog? {
        let cutoff = Date().timeIntervalSince1970 - retention.maxAge.inSeconds
        do {
            return try pool.read { db -> StoredLog? in
                guard let head = try Row.fetchOne(db, sql: "SELECT epoch, last_offset FROM channels WHERE name = ?", arguments: [channel.rawValue])
                else { return nil }
                let epoch: String = head["epoch"]
                let lastOffset: Int64 = head["last_offset"]
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT seq, id, time, publisher, binary, payload, idempotency_key FROM messages
                        WHERE channel = ? AND epoch = ? AND time >= ? ORDER BY seq DESC LIMIT ?
                        """,
                    arguments: [channel.rawValue, epoch, cutoff, retention.maxMessages]
                )
                var messages: [Message] = []
                var keys: [UInt64: IdempotencyKey] = [:]
                for row in rows.reversed() {
                    guard let message = Self.message(row, channel: channel, epoch: epoch) else { continue }
                    messages.append(message)
                    if let text = row["idempotency_key"] as String?, let key = try? IdempotencyKey(text) { keys[message.offset] = key }
                }
                return StoredLog(epoch: epoch, lastOffset: UInt64(clamping: lastOffset), messages: messages, idempotencyKeys: keys)
            }
        } catch {
            throw StoreError("cannot read channel \(channel) from SQLite: \(error)")
        }
    }

    public func append(_ message: Message, idempotencyKey: IdempotencyKey?, committed: @escaping @Sendable (StoreError?) -> Void) {
        let accepted = queue.withLock { queue in
            guard !queue.closing else { return false }
            queue.appends.append(Pending(message: message, idempotencyKey: idempotencyKey, committed: committed))
            return true
        }
        guard accepted else { return committed(StoreError("the SQLite store is closed")) }
        wakeWriter()
    }

    public func close() async {
        await withCheckedContinuation { (closer: CheckedContinuation<Void, Never>) in
            let closed = queue.withLock { queue in
                queue.closing = true
                if !queue.closed { queue.closers.append(closer) }
                return queue.closed
            }
            if closed { closer.resume() } else { wakeWriter() }
        }
    }

    public func trim(_ channel: ChannelName, epoch: String, through offset: UInt64) {
        enqueue { $0.trims[channel] = Trim(epoch: epoch, offset: offset) }
    }

    private func enqueue(_ change: (inout Queue) -> Void) {
        queue.withLock { change(&$0) }
        wakeWriter()
    }

    private func wakeWriter() {
        let wasIdle = queue.withLock { queue in
            defer { queue.idle = false }
            return queue.idle
        }
        if wasIdle { wake.signal() }
    }

    // MARK: - The writer

    private func runWriter() {
        var brokenEpochs: [ChannelName: String] = [:]
        while true {
            let (batch, trims, closing) = queue.withLock { queue -> ([Pending], [ChannelName: Trim], Bool) in
                let batch = Array(queue.appends.prefix(Self.maxBatch))
                queue.appends.removeFirst(batch.count)
                // Trims wait while appends do: acknowledgements come first.
                let trims = queue.appends.isEmpty ? queue.trims : [:]
                if queue.appends.isEmpty { queue.trims = [:] }
                queue.idle = batch.isEmpty && trims.isEmpty && !queue.closing
                return (batch, trims, queue.closing)
            }
            if batch.isEmpty && trims.isEmpty {
                if closing { break }
                wake.wait()
                continue
            }
            if !batch.isEmpty { commit(batch, brokenEpochs: &brokenEpochs) }
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

    /// Commits `pending`, but for messages of an epoch that lost a commit: those fail too.
    /// `brokenEpochs` holds, per channel, the epoch whose commit failed: the hub ends that
    /// epoch, and none of its later messages may be committed, or a restart would find them
    /// after a gap. One entry per channel at most.
    private func commit(_ pending: [Pending], brokenEpochs: inout [ChannelName: String]) {
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
            try pool.write { db in
                let insert = try db.cachedStatement(
                    sql: "INSERT INTO messages (channel, epoch, seq, id, time, publisher, binary, payload, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                )
                var heads: [ChannelName: StreamPosition] = [:]
                for pending in batch {
                    let message = pending.message
                    try insert.execute(arguments: [
                        message.channel.rawValue, message.position.epoch, Int64(truncatingIfNeeded: message.offset), message.id.uuidString,
                        message.time.timeIntervalSince1970, message.publisher?.uuidString, message.payload.kind == .binary,
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
            }
        } catch let failure {
            error = StoreError("SQLite commit failed: \(failure)")
            for entry in batch { brokenEpochs[entry.message.channel] = entry.message.position.epoch }
        }
        for entry in batch { entry.committed(error) }
    }

    /// Deletes, per channel, rows up to the trimmed offset and rows of other epochs, a batch at
    /// a time; a channel with more left is trimmed again on a later pass.
    private func delete(_ trims: [ChannelName: Trim]) {
        for (channel, trim) in trims {
            let deleted = try? pool.write { db -> Int in
                try db.execute(
                    sql: """
                        DELETE FROM messages WHERE rowid IN (
                            SELECT rowid FROM messages WHERE channel = ? AND (epoch <> ? OR seq <= ?) LIMIT ?
                        )
                        """,
                    arguments: [channel.rawValue, trim.epoch, Int64(truncatingIfNeeded: trim.offset), Self.trimBatch]
                )
                return db.changesCount
            }
            if deleted == Self.trimBatch {
                queue.withLock { queue in
                    if queue.trims[channel] == nil { queue.trims[channel] = trim }
                }
            }
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
