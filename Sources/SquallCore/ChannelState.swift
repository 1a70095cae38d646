// SPDX-License-Identifier: Apache-2.0

import DequeModule
import Foundation
import Synchronization

/// One channel: its log, who listens, what waits on it and its shared-store bookkeeping, behind
/// one lock. Each part says when it holds nothing; the channel is idle — and the sweep may forget
/// it — when every part does, so nothing parked on a channel can be forgotten with it.
final class ChannelState: Sendable {
    struct Locked {
        var log: ChannelLog
        var recent: RecentPublishes
        /// Operations that arrived while the store was reading the log, in order; `nil` once
        /// it has (at once, without a store). The log is a placeholder until then.
        var opening: Deque<ParkedOperation>?
        /// The sweep forgot the channel, or its opening failed: whoever holds this state looks
        /// the channel up again.
        var retired = false
        var audience: ChannelAudience
        /// Long polls parked until the next append.
        var polls: [UUID: CheckedContinuation<Void, Never>] = [:]
        var sync = ChannelSync()
        /// The offset the store was last told it may delete through.
        var trimmedThrough: UInt64 = 0

        /// Nothing is retained, parked, owed or listening.
        var isIdle: Bool {
            opening == nil && log.isEmpty && !log.hasUncommitted && recent.count == 0 && audience.isEmpty && polls.isEmpty
                && sync.isSettled
        }
    }

    let lock: Mutex<Locked>

    init(log: ChannelLog, recent: RecentPublishes, opening: Bool) {
        lock = Mutex(Locked(log: log, recent: recent, opening: opening ? [] : nil, audience: ChannelAudience()))
    }
}

/// Something to do on a channel once its log is open: run under the channel's lock (returning
/// what to do once it is let go), or told why the log could not be opened.
struct ParkedOperation: Sendable {
    let run: @Sendable (inout ChannelState.Locked) -> AfterUnlock?
    let fail: @Sendable (StoreError) -> Void
}

/// Work that follows a change to a channel and must run once its lock is let go: answers to
/// publishers, which may call back into the hub.
typealias AfterUnlock = @Sendable () -> Void

/// A channel's bookkeeping against a ``SharedLog``: this node's publishes in flight and the
/// catch-up reads that bring other nodes' messages.
struct ChannelSync {
    /// This node's publishes the store has not answered yet.
    var awaitingCommit = 0
    /// This node's publishes committed ahead of the log (or in an epoch it has not reached),
    /// answered when they join it — or, at the latest, when the catch-up that brings them ends.
    var acknowledgeOnJoin: [StreamPosition: [AfterUnlock]] = [:]
    /// Polls waiting for the next catch-up to finish.
    var caughtUpWaiters: [UUID: CheckedContinuation<Void, Never>] = [:]
    /// A catch-up read is under way, and whether to read again after it.
    var catchingUp = false
    var catchUpAgain = false

    /// Nothing is in flight.
    var isSettled: Bool { awaitingCommit == 0 && acknowledgeOnJoin.isEmpty && caughtUpWaiters.isEmpty && !catchingUp }
}
