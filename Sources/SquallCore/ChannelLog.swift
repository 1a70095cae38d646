// SPDX-License-Identifier: Apache-2.0

import DequeModule
import Foundation

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
///
/// A log a durable store held nothing for is **unpublished**: it has no epoch until its first
/// message, and hands out ``StreamPosition/unpublished(at:)``, which continues into that first
/// epoch (``isFirst``) for ``Retention/metaTTL``. A memory log always has an epoch, made when it
/// is, and vouches for no unpublished position: it forgets everything on restart.
struct ChannelLog {
    /// Where a position stands in this log.
    enum Standing: Equatable {
        /// Every message after `offset` is here: a reader continues after it.
        case resumable(after: UInt64)
        /// Past this log's end, or in an epoch it has not reached yet: with a shared store, a
        /// position another node gave out before this one heard of it (no sticky sessions).
        case ahead
        /// Not every message after it is here (another epoch, older than retention), or the
        /// log cannot vouch for it.
        case lost
    }

    let channel: ChannelName
    let retention: Retention
    /// The epoch; empty while the log is unpublished.
    private(set) var epoch: String
    /// The epoch began at the channel's first message, from an unpublished log: a position given
    /// out while the channel was unpublished continues into it.
    private(set) var isFirst: Bool
    /// A durable store backs the log: unpublished positions are vouched for.
    let isDurable: Bool
    /// A store several nodes share backs the log: positions past its end are another node's.
    let followsStore: Bool
    /// The offset of the last committed message (0 before any).
    private(set) var lastOffset: UInt64 = 0
    /// The offset of the last message given a position, committed or not.
    private(set) var assignedOffset: UInt64 = 0
    /// The offset of the last message retention dropped (or that a restore did not bring back).
    private(set) var droppedThrough: UInt64 = 0
    private var entries = Deque<Message>()
    private let ledger = RetentionLedger()

    /// An empty log in memory only, in a new epoch.
    init(channel: ChannelName, retention: Retention) {
        self.channel = channel
        self.retention = retention
        self.epoch = StreamPosition.newEpoch()
        self.isFirst = false
        self.isDurable = false
        self.followsStore = false
    }

    /// The log a durable store kept, held to `retention`, or an unpublished one if it kept none.
    init(channel: ChannelName, retention: Retention, stored: StoredLog?, followsStore: Bool, now: Date) {
        self.channel = channel
        self.retention = retention
        self.epoch = stored?.epoch ?? ""
        self.isFirst = stored?.isFirst ?? false
        self.isDurable = true
        self.followsStore = followsStore
        guard let stored else { return }
        lastOffset = stored.lastOffset
        assignedOffset = stored.lastOffset
        for message in stored.messages where message.position.epoch == epoch && message.offset <= lastOffset {
            guard entries.last.map({ $0.offset < message.offset }) ?? true else { continue }
            message.retain(in: ledger)
            entries.append(message)
        }
        droppedThrough = (entries.first?.offset ?? lastOffset + 1) - 1
        prune(now: now)
    }

    /// Nothing was ever published to the channel, as far as its store knows.
    var isUnpublished: Bool { epoch.isEmpty }

    /// The position of the last message committed (offset 0 before any), as given out at `now`.
    func position(now: Date) -> StreamPosition {
        isUnpublished ? .unpublished(at: now) : StreamPosition(epoch: epoch, offset: lastOffset)
    }

    /// The position just before the oldest retained message: reading from it returns them all.
    func startPosition(now: Date) -> StreamPosition {
        isUnpublished ? .unpublished(at: now) : StreamPosition(epoch: epoch, offset: (entries.first?.offset ?? lastOffset + 1) - 1)
    }

    var isEmpty: Bool { entries.isEmpty }

    /// Whether messages were given positions that are not committed yet.
    var hasUncommitted: Bool { assignedOffset > lastOffset }

    /// Where `position` stands, at `now`.
    func standing(of position: StreamPosition, now: Date) -> Standing {
        if let issued = position.unpublishedAt {
            // No life of the channel began and was forgotten since `issued` if it is younger
            // than the meta TTL: its first epoch, if it has one yet, is the one to continue into.
            guard isDurable, now.timeIntervalSince(issued) <= retention.metaTTL.inSeconds else { return .lost }
            guard !isUnpublished else { return .resumable(after: 0) }
            return isFirst && droppedThrough == 0 ? .resumable(after: 0) : .lost
        }
        guard !isUnpublished else { return followsStore ? .ahead : .lost }
        guard position.epoch == epoch else { return .lost }
        guard position.offset <= lastOffset else { return followsStore ? .ahead : .lost }
        let firstRetained = entries.first?.offset ?? (lastOffset + 1)
        return position.offset + 1 >= firstRetained ? .resumable(after: position.offset) : .lost
    }

    /// A read of this log from `position` (the latest messages without one), as history and
    /// polls return it.
    func read(since position: StreamPosition?, limit: Int, budget: ReadBudget, now: Date) -> History {
        guard let position else {
            return History(channel: channel, messages: latest(limit, budget: budget), position: self.position(now: now), recovered: true)
        }
        switch standing(of: position, now: now) {
        case .ahead:
            return History(channel: channel, messages: [], position: position, recovered: true)
        case .lost:
            return History(channel: channel, messages: [], position: self.position(now: now), recovered: false)
        case .resumable(let after):
            let messages = messages(after: after, limit: limit, budget: budget)
            return History(channel: channel, messages: messages, position: messages.last?.position ?? self.position(now: now), recovered: true)
        }
    }

    /// Appends a message that needs no store: ``assign(_:publisher:now:)`` and ``commit(_:)`` at once.
    mutating func append(_ payload: Payload, publisher: UUID?, now: Date) -> Message {
        let message = assign(payload, publisher: publisher, now: now)
        _ = commit(message)
        return message
    }

    /// A message with the next position of this epoch, not yet in the log. An unpublished log
    /// begins its first epoch here.
    mutating func assign(_ payload: Payload, publisher: UUID?, now: Date) -> Message {
        if isUnpublished {
            epoch = StreamPosition.newEpoch()
            isFirst = true
        }
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

    /// Whether `message` is the next one: the next offset of this epoch, or, for an unpublished
    /// log, offset 1 of the epoch a shared store began.
    func isNext(_ message: Message) -> Bool {
        isUnpublished ? message.offset == 1 : message.position.epoch == epoch && message.offset == lastOffset + 1
    }

    /// Adds a message once it is committed. `false`, and nothing added, if it is not the next
    /// one (its epoch was ended by ``restartEpoch()`` since it was assigned).
    mutating func commit(_ message: Message) -> Bool {
        guard isNext(message) else { return false }
        if isUnpublished {
            epoch = message.position.epoch
            isFirst = true
        }
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
    /// commit messages that were given positions, so that no later message leaves a gap. The new
    /// epoch is not a first one: an unpublished position may have missed the old one.
    mutating func restartEpoch() {
        while let first = entries.popFirst() { first.release(from: ledger) }
        epoch = StreamPosition.newEpoch()
        isFirst = false
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

    /// Drops the retained messages up to `offset`, oldest first: a history removal. The position
    /// stays, so a resume from before the last dropped one is no longer recoverable.
    mutating func drop(through offset: UInt64) {
        while let first = entries.first, first.offset <= offset {
            entries.removeFirst().release(from: ledger)
            droppedThrough = first.offset
        }
    }

    /// Up to `limit` messages after `offset`, oldest first, as many as `budget` allows.
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
