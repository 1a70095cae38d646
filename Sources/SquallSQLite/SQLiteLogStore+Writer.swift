// SPDX-License-Identifier: Apache-2.0

import Dispatch
import Foundation
import GRDB
import SquallCore

/// The writer thread: the only one that writes to the file. It commits queued appends in
/// batches, runs the hub's trims between them, and sweeps what has expired.
extension SQLiteLogStore {
    func runWriter() {
        var nextSweep = DispatchTime.now() + sweepInterval
        var sweepUnfinished = false
        while true {
            let (batch, events, trims, cleanupTurn, closing) = queue.withLock { queue -> ([Pending], [LifecycleEvent], [ChannelName: Trim], Bool, Bool) in
                let batch: [Pending]
                if queue.appends.count <= Self.maxBatch {
                    batch = queue.appends
                    queue.appends = []
                } else {
                    batch = Array(queue.appends.prefix(Self.maxBatch))
                    queue.appends.removeFirst(batch.count)
                }
                queue.queuedBytes -= batch.reduce(0) { $0 + $1.size }
                let events = queue.events
                queue.events = []
                // Trims wait while appends do, acknowledgements first, but not forever: under
                // load they run every `trimEvery` batches, or the file would only grow.
                if !batch.isEmpty { queue.batchesSinceTrim += 1 }
                let trimNow = queue.appends.isEmpty || queue.batchesSinceTrim >= Self.trimEvery
                let trims = trimNow ? queue.trims : [:]
                if trimNow {
                    queue.trims = [:]
                    queue.batchesSinceTrim = 0
                }
                queue.idle = batch.isEmpty && events.isEmpty && trims.isEmpty && !queue.closing
                return (batch, events, trims, trimNow, queue.closing)
            }
            let sweepDue = !closing && (sweepUnfinished || DispatchTime.now() >= nextSweep)
            if batch.isEmpty && events.isEmpty && trims.isEmpty && !sweepDue {
                if closing { break }
                // The store's own thread, asleep until an append, a trim or the next sweep.
                _ = wake.wait(timeout: nextSweep)  // blocking-ok: the writer thread, never a request's
                continue
            }
            if !batch.isEmpty || !events.isEmpty { commit(batch, events: events) }
            if !trims.isEmpty { delete(trims) }
            // A sweep takes the trims' turn: when no append waits, and under load every
            // `trimEvery` batches, or a busy file would never sweep.
            if sweepDue, cleanupTurn {
                sweepUnfinished = sweepExpired()
                if !sweepUnfinished { nextSweep = .now() + sweepInterval }
                // Awake on purpose: the next loop sees the sweep is done or goes on with it.
                queue.withLock { $0.idle = false }
            }
        }
        try? pool.close()
        let closers = queue.withLock { queue in
            queue.closed = true
            defer { queue.closers = [] }
            return queue.closers
        }
        for closer in closers { closer.resume() }
    }

    /// How often the writer sweeps: ``Retention/sweepInterval``.
    private var sweepInterval: DispatchTimeInterval {
        let interval = retention.sweepInterval.components
        return .milliseconds(Int(clamping: interval.seconds) * 1000 + Int(interval.attoseconds / 1_000_000_000_000_000))
    }

    /// Commits `pending`, but for messages of an epoch that lost a commit: those fail too
    /// (`Queue.brokenEpochs`); with them, in the same transaction, `events` and each message's
    /// `published` event.
    private func commit(_ pending: [Pending], events: [LifecycleEvent]) {
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
        guard !batch.isEmpty || !events.isEmpty else { return }
        let published = publishedEvent.withLock { $0 }
        // Published events, within what the outbox may hold.
        let room = queue.withLock { max(0, maxOutboxEvents - $0.outboxCount) }
        let allPublished = published.map { make in batch.compactMap { make($0.message) } } ?? []
        let publishedEvents = Array(allPublished.prefix(room))
        if publishedEvents.count < allPublished.count { droppedEventTotal.add(allPublished.count - publishedEvents.count, ordering: .relaxed) }
        var error: StoreError?
        let started = ContinuousClock.now
        do {
            // The writer thread: group commit is its work.
            let heads = try pool.write { db -> [ChannelName: Message] in  // blocking-ok: the writer thread
                let insert = try db.cachedStatement(
                    sql: "INSERT INTO messages (channel, epoch, seq, id, time, publisher, binary, payload, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                )
                var heads: [ChannelName: Message] = [:]
                for pending in batch {
                    let message = pending.message
                    try insert.execute(arguments: [
                        message.channel.rawValue, message.position.epoch, Int64(truncatingIfNeeded: message.offset), message.id.text,
                        message.time.timeIntervalSince1970, message.publisher?.text, message.payload.kind == .binary,
                        Data(message.payload.bytes.readableBytesView), pending.idempotencyKey?.rawValue,
                    ])
                    heads[message.channel] = message
                }
                try Self.insert(events + publishedEvents, into: db)
                // A channel's epoch is a first one when its row is new; a later epoch (after a
                // failed commit) is not.
                let head = try db.cachedStatement(
                    sql: """
                        INSERT INTO channels (name, epoch, last_offset, updated, is_first) VALUES (?, ?, ?, ?, 1)
                        ON CONFLICT (name) DO UPDATE SET
                            is_first = CASE WHEN channels.epoch = excluded.epoch THEN channels.is_first ELSE 0 END,
                            epoch = excluded.epoch, last_offset = excluded.last_offset, updated = excluded.updated
                        """
                )
                for (channel, last) in heads {
                    try head.execute(arguments: [
                        channel.rawValue, last.position.epoch, Int64(truncatingIfNeeded: last.offset), last.time.timeIntervalSince1970,
                    ])
                }
                return heads
            }
            if !publishedEvents.isEmpty { queue.withLock { $0.outboxCount += publishedEvents.count } }
            if !brokenEpochs.isEmpty {
                queue.withLock { queue in
                    for (channel, last) in heads where queue.brokenEpochs[channel].map({ $0 != last.position.epoch }) == true {
                        queue.brokenEpochs[channel] = nil
                    }
                }
            }
        } catch let failure {
            error = StoreError("SQLite commit failed: \(failure)")
            droppedEventTotal.add(events.count, ordering: .relaxed)
            queue.withLock { queue in
                queue.outboxCount -= events.count
                for entry in batch { queue.brokenEpochs[entry.message.channel] = entry.message.position.epoch }
            }
        }
        if let observer = observer.withLock({ $0 }), !batch.isEmpty {
            if error == nil { observer.committed(messages: batch.count, after: .now - started) } else { observer.commitFailed() }
        }
        for entry in batch { entry.committed(error) }
    }

    /// Deletes, per channel, rows up to the trimmed offset and rows of other epochs: at most
    /// ``trimBatch`` rows in one transaction; channels with more left are trimmed on a later
    /// pass. A failed pass is dropped: the hub trims again as retention moves on.
    private func delete(_ trims: [ChannelName: Trim]) {
        let unfinished = try? pool.write { db -> [ChannelName: Trim] in  // blocking-ok: the writer thread
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

    /// One batch of the sweep: messages older than the retention's age, then channels whose
    /// last message is older than the meta TTL (with whatever rows they still have), at most
    /// ``trimBatch`` rows in one transaction. `true` when more are left for the next batch.
    private func sweepExpired() -> Bool {
        let now = Date().timeIntervalSince1970
        let messageCutoff = now - retention.maxAge.inSeconds
        let channelCutoff = now - retention.metaTTL.inSeconds
        let deleted = try? pool.write { db -> Int in  // blocking-ok: the writer thread
            try db.execute(
                sql: "DELETE FROM messages WHERE rowid IN (SELECT rowid FROM messages WHERE time < ? LIMIT ?)",
                arguments: [messageCutoff, Self.trimBatch]
            )
            var deleted = db.changesCount
            guard deleted < Self.trimBatch else { return deleted }
            let forgotten = try String.fetchAll(
                db, sql: "SELECT name FROM channels WHERE updated < ? LIMIT ?", arguments: [channelCutoff, Self.trimBatch - deleted])
            for name in forgotten {
                try db.execute(sql: "DELETE FROM messages WHERE channel = ?", arguments: [name])
                try db.execute(sql: "DELETE FROM channels WHERE name = ?", arguments: [name])
                deleted += 1
            }
            return deleted
        }
        return (deleted ?? 0) >= Self.trimBatch
    }
}
