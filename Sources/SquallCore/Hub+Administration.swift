// SPDX-License-Identifier: Apache-2.0

import Foundation

/// What a backend asks of the hub through the server API: the channels in use, and forgetting a
/// channel's history.
extension Hub {
    /// A channel in use on this node: how many subscribers it has here, and the offset its log
    /// has reached (its message rate is how fast that grows).
    public struct ChannelUse: Sendable, Hashable {
        public let channel: ChannelName
        public let subscribers: Int
        public let lastOffset: UInt64
    }

    /// The channels with subscribers on this node, by name; with `matching`, only the names it
    /// accepts. One shard is locked at a time.
    public func channels(matching: (ChannelName) -> Bool = { _ in true }) -> [ChannelUse] {
        var found: [ChannelUse] = []
        for shard in allShards {
            let states = shard.withLock { Array($0) }
            for (channel, state) in states where matching(channel) {
                let use = state.lock.withLock { state in
                    state.retired ? nil : ChannelUse(channel: channel, subscribers: state.audience.subscribers.count, lastOffset: state.log.lastOffset)
                }
                if let use, use.subscribers > 0 { found.append(use) }
            }
        }
        return found.sorted { $0.channel < $1.channel }
    }

    /// Forgets `channel`'s retained messages: history and polls find none, and a client resuming
    /// from before now is told its position cannot be recovered. The channel keeps its
    /// position: the next message continues its offsets. A local store deletes the messages as
    /// it deletes those past retention; a shared store deletes them at once, and every node
    /// forgets its copy.
    /// - Returns: the position the channel keeps.
    /// - Throws: the store's error if the channel's log could not be read, or a shared store
    ///   could not delete.
    public func removeHistory(_ channel: ChannelName) async throws(StoreError) -> StreamPosition {
        if case .shared(let log, _, _) = storage, let position = try await log.removeHistory(channel) {
            historyRemoved(channel, through: position)
            return position
        }
        return try await whenOpen(channel) { state in
            self.dropHistory(&state)
            return state.log.position(now: self.now())
        }
    }

    /// `channel`'s history was removed through `position` (by a shared store, for every node):
    /// this node's copy goes too, if it is of that epoch.
    public func historyRemoved(_ channel: ChannelName, through position: StreamPosition) {
        _ = withExistingChannel(channel) { state in
            guard state.log.epoch == position.epoch else { return }
            self.dropHistory(&state, through: position.offset)
        }
    }

    /// Under the channel's lock: drops the log's messages up to `offset` (all of them by default)
    /// and tells a local store it may delete them.
    private func dropHistory(_ state: inout ChannelState.Locked, through offset: UInt64 = .max) {
        state.log.drop(through: offset)
        prune(&state, now: now())
    }
}
