import DequeModule
import Foundation

/// How long a channel's log keeps messages. Whichever bound is hit first applies.
public struct Retention: Sendable, Hashable {
    /// Most messages kept per channel (at least 1). Default 1,000.
    public var maxMessages: Int
    /// Oldest message kept. Default 1 hour.
    public var maxAge: Duration
    /// Most bytes kept per channel: every retained message's payload and each wire-format copy
    /// made of it (JSON envelope, frames, SSE event, compressed variants), counted as they are
    /// made. Default 16 MiB.
    public var maxBytes: Int

    /// Retention with the given bounds; `maxMessages` below 1 is taken as 1.
    public init(maxMessages: Int = 1000, maxAge: Duration = .seconds(3600), maxBytes: Int = 16 << 20) {
        self.maxMessages = max(1, maxMessages)
        self.maxAge = maxAge
        self.maxBytes = maxBytes
    }
}

/// The append-only log of one channel, kept in memory.
///
/// Contracts: offsets start at 1 and grow by one per append within the log's epoch; messages are
/// dropped oldest first once they pass the retention bounds; a read from a position either returns
/// every retained message after it, in order, or says the position is not recoverable (another
/// epoch, older than retention, or beyond the end) — never a subset with a gap. The byte bound
/// counts each message's wire-format copies as they are made (``RetentionLedger``): a publish
/// or a read may pass it by the copies it makes, and prunes again before it lets go of the
/// channel; the newest message is always kept. Not thread-safe: the ``Hub`` guards each log
/// with its channel's lock.
///
/// With a ``LogStore`` an append is two steps: ``assign(_:publisher:now:)`` gives the message its
/// position, ``commit(_:)`` adds it once the store has made it durable. Positions, reads and
/// resume see committed messages only; assigned ones wait in the store's queue, in offset order.
struct ChannelLog {
    let channel: ChannelName
    private(set) var epoch: String
    let retention: Retention
    /// The offset of the last committed message (0 before any).
    private(set) var lastOffset: UInt64 = 0
    /// The offset of the last message given a position, committed or not.
    private(set) var assignedOffset: UInt64 = 0
    /// The offset of the last message retention dropped (or that a restore did not bring back).
    private(set) var droppedThrough: UInt64 = 0
    private var entries = Deque<Message>()
    private let ledger = RetentionLedger()

    /// An empty log in a new epoch, or the log a store kept, held to `retention`.
    init(channel: ChannelName, retention: Retention, restored: StoredLog? = nil, now: Date = Date()) {
        self.channel = channel
        self.retention = retention
        self.epoch = restored?.epoch ?? StreamPosition.newEpoch()
        guard let restored else { return }
        lastOffset = restored.lastOffset
        assignedOffset = restored.lastOffset
        for message in restored.messages where message.position.epoch == epoch && message.offset <= lastOffset {
            guard entries.last.map({ $0.offset < message.offset }) ?? true else { continue }
            message.retain(in: ledger)
            entries.append(message)
        }
        droppedThrough = (entries.first?.offset ?? lastOffset + 1) - 1
        prune(now: now)
    }

    /// The position of the last message committed (offset 0 before any).
    var position: StreamPosition { StreamPosition(epoch: epoch, offset: lastOffset) }

    /// The position just before the oldest retained message: reading from it returns them all.
    var startPosition: StreamPosition {
        StreamPosition(epoch: epoch, offset: (entries.first?.offset ?? lastOffset + 1) - 1)
    }

    var isEmpty: Bool { entries.isEmpty }

    /// Whether messages were given positions that are not committed yet.
    var hasUncommitted: Bool { assignedOffset > lastOffset }

    /// Appends a message that needs no store: ``assign(_:publisher:now:)`` and ``commit(_:)`` at once.
    mutating func append(_ payload: Payload, publisher: UUID?, now: Date) -> Message {
        let message = assign(payload, publisher: publisher, now: now)
        _ = commit(message)
        return message
    }

    /// A message with the next position of this epoch, not yet in the log.
    mutating func assign(_ payload: Payload, publisher: UUID?, now: Date) -> Message {
        assignedOffset += 1
        return Message(
            channel: channel,
            position: StreamPosition(epoch: epoch, offset: assignedOffset),
            time: now,
            publisher: publisher,
            payload: payload
        )
    }

    /// Takes back the position of `message`, the last one assigned, which the store refused
    /// before queueing it: the next message gets it, so no gap is left.
    mutating func unassign(_ message: Message) {
        guard message.position.epoch == epoch, message.offset == assignedOffset else { return }
        assignedOffset -= 1
    }

    /// Adds an assigned message once it is committed. `false`, and nothing added, if it is not
    /// the next one of this epoch (its epoch was ended by ``restartEpoch()`` since it was assigned).
    mutating func commit(_ message: Message) -> Bool {
        guard message.position.epoch == epoch, message.offset == lastOffset + 1 else { return false }
        lastOffset = message.offset
        assignedOffset = max(assignedOffset, lastOffset)
        message.retain(in: ledger)
        entries.append(message)
        prune(now: message.time)
        return true
    }

    /// Whether `position` is at or before this log's end, in its epoch.
    func holds(_ position: StreamPosition) -> Bool {
        position.epoch == epoch && position.offset <= lastOffset
    }

    /// Ends the epoch: the log starts again, empty, in a new one. For when a store failed to
    /// commit messages that were given positions, so that no later message leaves a gap.
    mutating func restartEpoch() {
        while let first = entries.popFirst() { first.release(from: ledger) }
        epoch = StreamPosition.newEpoch()
        lastOffset = 0
        assignedOffset = 0
        droppedThrough = 0
    }

    /// Bytes the retained messages and their copies take now.
    var retainedBytes: Int { ledger.bytes }

    /// Drops what is past retention, oldest first.
    mutating func prune(now: Date) {
        let cutoff = now.addingTimeInterval(-retention.maxAge.inSeconds)
        // The byte bound never drops the newest message: a channel keeps at least its last one
        // for resume, so it holds at most maxBytes plus that message's copies.
        while let first = entries.first,
            entries.count > retention.maxMessages || first.time < cutoff || (ledger.bytes > retention.maxBytes && entries.count > 1)
        {
            let dropped = entries.removeFirst()
            dropped.release(from: ledger)
            droppedThrough = dropped.offset
        }
    }

    /// Whether every message after `position` is still here.
    func canResume(from position: StreamPosition) -> Bool {
        guard position.epoch == epoch, position.offset <= lastOffset else { return false }
        let firstRetained = entries.first?.offset ?? (lastOffset + 1)
        return position.offset + 1 >= firstRetained
    }

    /// Up to `limit` messages after `offset`, oldest first, as many as `budget` allows. The
    /// caller checked `canResume`.
    func messages(after offset: UInt64, limit: Int, budget: ReadBudget) -> [Message] {
        guard let first = entries.first?.offset, offset < lastOffset else { return [] }
        let start = Int(max(offset + 1, first) - first)
        let end = start + min(limit, entries.count - start)
        var taken: [Message] = []
        var spent = 0
        for message in entries[start..<end] {
            spent += budget.cost(message)
            guard taken.isEmpty || spent <= budget.maxBytes else { break }
            taken.append(message)
        }
        return taken
    }

    /// The last `limit` messages, oldest first, as many of the newest as `budget` allows.
    func latest(_ limit: Int, budget: ReadBudget) -> [Message] {
        var taken: [Message] = []
        var spent = 0
        for message in entries.suffix(limit).reversed() {
            spent += budget.cost(message)
            guard taken.isEmpty || spent <= budget.maxBytes else { break }
            taken.append(message)
        }
        return taken.reversed()
    }
}

/// How much one read of a log may return: messages are taken while their cost, summed, stays
/// within `maxBytes` — and always at least one, so that no message is out of reach.
public struct ReadBudget: Sendable {
    /// Most bytes, as `cost` counts them.
    public var maxBytes: Int
    /// What one message costs the reply (its encoded size, or an estimate).
    public var cost: @Sendable (Message) -> Int

    /// A budget of `maxBytes` as `cost` counts.
    public init(maxBytes: Int, cost: @escaping @Sendable (Message) -> Int) {
        self.maxBytes = maxBytes
        self.cost = cost
    }

    /// No bound.
    public static let unlimited = ReadBudget(maxBytes: .max) { _ in 0 }
}
