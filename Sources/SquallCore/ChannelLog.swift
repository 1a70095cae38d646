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
struct ChannelLog {
    let channel: ChannelName
    let epoch: String
    let retention: Retention
    private(set) var lastOffset: UInt64 = 0
    private var entries = Deque<Message>()
    private let ledger = RetentionLedger()

    init(channel: ChannelName, retention: Retention) {
        self.channel = channel
        self.retention = retention
        self.epoch = Self.makeEpoch()
    }

    /// The position of the last message appended (offset 0 before any).
    var position: StreamPosition { StreamPosition(epoch: epoch, offset: lastOffset) }

    /// The position just before the oldest retained message: reading from it returns them all.
    var startPosition: StreamPosition {
        StreamPosition(epoch: epoch, offset: (entries.first?.offset ?? lastOffset + 1) - 1)
    }

    var isEmpty: Bool { entries.isEmpty }

    mutating func append(_ payload: Payload, publisher: UUID?, now: Date) -> Message {
        lastOffset += 1
        let message = Message(
            channel: channel,
            position: StreamPosition(epoch: epoch, offset: lastOffset),
            time: now,
            publisher: publisher,
            payload: payload
        )
        message.retain(in: ledger)
        entries.append(message)
        prune(now: now)
        return message
    }

    /// Bytes the retained messages and their copies take now.
    var retainedBytes: Int { ledger.bytes }

    /// Drops what is past retention, oldest first.
    mutating func prune(now: Date) {
        let maxAge = Double(retention.maxAge.components.seconds) + Double(retention.maxAge.components.attoseconds) / 1e18
        let cutoff = now.addingTimeInterval(-maxAge)
        // The byte bound never drops the newest message: a channel keeps at least its last one
        // for resume, so it holds at most maxBytes plus that message's copies.
        while let first = entries.first,
            entries.count > retention.maxMessages || first.time < cutoff || (ledger.bytes > retention.maxBytes && entries.count > 1)
        {
            entries.removeFirst().release(from: ledger)
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

    /// A short random epoch: 8 base-36 characters.
    private static func makeEpoch() -> String {
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz")
        var generator = SystemRandomNumberGenerator()
        return String((0..<8).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] })
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
