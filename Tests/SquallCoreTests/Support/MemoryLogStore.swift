// SPDX-License-Identifier: Apache-2.0

import Foundation
import SquallCore
import Synchronization

/// A durable ``LogStore`` kept in memory for the hub's tests, which can be told to hang (as a
/// disk or database that does not answer) or to fail commits, and counts its reads. Like
/// SQLite's it makes a row at a channel's first commit, never on a read, and gives back an
/// epoch ended by a failed commit as a new one that is not a first.
final class MemoryLogStore: LogStore {
    private struct Row {
        var epoch: String
        var lastOffset: UInt64
        var messages: [Message]
        var isFirst: Bool
    }

    private struct State {
        var rows: [ChannelName: Row] = [:]
        var broken: [ChannelName: String] = [:]
        var failingCommits = false
        var restores = 0
        var restoredChannels = 0
        var largestRead = 0
    }

    private let state = Mutex(State())
    private let gate = StoreGate()

    /// Reads wait from now on until ``resume()``.
    func hang() { gate.hang() }

    /// Lets waiting reads go on.
    func resume() { gate.resume() }

    /// Commits fail from now on (`false`: they succeed again).
    func failCommits(_ failing: Bool) { state.withLock { $0.failingCommits = failing } }

    /// How many reads the hub made, of how many channels in all, and in the largest read.
    var restores: (reads: Int, channels: Int, largest: Int) { state.withLock { ($0.restores, $0.restoredChannels, $0.largestRead) } }

    /// The channels the store holds rows for.
    var channels: Set<ChannelName> { state.withLock { Set($0.rows.keys) } }

    func restore(_ channels: [ChannelName], retention: Retention) async throws(StoreError) -> [ChannelName: StoredLog] {
        state.withLock { state in
            state.restores += 1
            state.restoredChannels += channels.count
            state.largestRead = max(state.largestRead, channels.count)
        }
        await gate.pass()
        return state.withLock { state in
            var logs: [ChannelName: StoredLog] = [:]
            for channel in channels {
                if let broken = state.broken[channel], state.rows[channel]?.epoch == broken {
                    logs[channel] = StoredLog(epoch: StreamPosition.newEpoch(), lastOffset: 0, messages: [], isFirst: false)
                } else if let row = state.rows[channel] {
                    logs[channel] = StoredLog(epoch: row.epoch, lastOffset: row.lastOffset, messages: row.messages, isFirst: row.isFirst)
                }
            }
            return logs
        }
    }

    func append(_ message: Message, idempotencyKey: IdempotencyKey?, committed: @escaping @Sendable (StoreError?) -> Void) throws(StoreError) {
        let failing = state.withLock { state -> Bool in
            guard !state.failingCommits else {
                state.broken[message.channel] = message.position.epoch
                return true
            }
            if var row = state.rows[message.channel] {
                row.isFirst = row.epoch == message.position.epoch ? row.isFirst : false
                row.epoch = message.position.epoch
                row.lastOffset = message.offset
                row.messages.append(message)
                state.rows[message.channel] = row
            } else {
                state.rows[message.channel] = Row(epoch: message.position.epoch, lastOffset: message.offset, messages: [message], isFirst: true)
            }
            return false
        }
        Task { committed(failing ? StoreError("the commit failed") : nil) }
    }

    func trim(_ channel: ChannelName, epoch: String, through offset: UInt64) {}

    func close() async {}
}
