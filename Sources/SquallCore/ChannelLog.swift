import DequeModule
import Foundation

/// How long a channel's log keeps messages. Whichever bound is hit first applies.
public struct Retention: Sendable, Hashable {
    /// Most messages kept per channel. Default 1,000.
    public var maxMessages: Int
    /// Oldest message kept. Default 1 hour.
    public var maxAge: Duration

    /// Retention with the given bounds.
    public init(maxMessages: Int = 1000, maxAge: Duration = .seconds(3600)) {
        precondition(maxMessages >= 1, "retention must keep at least one message")
        self.maxMessages = maxMessages
        self.maxAge = maxAge
    }
}

/// The append-only log of one channel, kept in memory.
///
/// Contracts: offsets start at 1 and grow by one per append within the log's epoch; messages are
/// dropped oldest first once they pass the retention bounds; a read from a position either returns
/// every retained message after it, in order, or says the position is not recoverable (another
/// epoch, older than retention, or beyond the end) — never a subset with a gap. Not thread-safe:
/// the ``Hub`` guards each log with its channel's lock.
struct ChannelLog {
    let channel: ChannelName
    let epoch: String
    let retention: Retention
    private(set) var lastOffset: UInt64 = 0
    private var entries = Deque<Message>()

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
        entries.append(message)
        prune(now: now)
        return message
    }

    /// Drops what is past retention.
    mutating func prune(now: Date) {
        while entries.count > retention.maxMessages { entries.removeFirst() }
        let maxAge = Double(retention.maxAge.components.seconds) + Double(retention.maxAge.components.attoseconds) / 1e18
        let cutoff = now.addingTimeInterval(-maxAge)
        while let first = entries.first, first.time < cutoff { entries.removeFirst() }
    }

    /// Whether every message after `position` is still here.
    func canResume(from position: StreamPosition) -> Bool {
        guard position.epoch == epoch, position.offset <= lastOffset else { return false }
        let firstRetained = entries.first?.offset ?? (lastOffset + 1)
        return position.offset + 1 >= firstRetained
    }

    /// Up to `limit` messages after `offset`, oldest first. The caller checked `canResume`.
    func messages(after offset: UInt64, limit: Int) -> [Message] {
        guard let first = entries.first?.offset, offset < lastOffset else { return [] }
        let start = Int(max(offset + 1, first) - first)
        let end = start + min(limit, entries.count - start)
        return Array(entries[start..<end])
    }

    /// The last `limit` messages, oldest first.
    func latest(_ limit: Int) -> [Message] {
        Array(entries.suffix(limit))
    }

    /// A short random epoch: 8 base-36 characters.
    private static func makeEpoch() -> String {
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz")
        return String((0..<8).map { _ in alphabet.randomElement()! })
    }
}
