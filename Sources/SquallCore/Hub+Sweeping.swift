// SPDX-License-Identifier: Apache-2.0

import Foundation

/// Sweeping: every log held to its retention, and idle channels forgotten.
extension Hub {
    /// Prunes every log and forgets channels that hold nothing and nobody, one shard at a time:
    /// a shard is locked only while its own channels are looked at.
    /// - Returns: how many channels were forgotten.
    @discardableResult
    public func sweep() -> Int {
        allShards.reduce(0) { $0 + sweep($1) }
    }

    /// ``sweep()`` with a pause between shards, for the sweeper's task: it never holds the
    /// cooperative pool for a whole pass.
    /// - Returns: how many channels were forgotten.
    @discardableResult
    public func sweepYielding() async -> Int {
        var forgotten = 0
        for shard in allShards {
            forgotten += sweep(shard)
            await Task.yield()
        }
        return forgotten
    }

    private func sweep(_ shard: Shard) -> Int {
        let time = now()
        let forgotten = shard.withLock { channels in
            let before = channels.count
            channels = channels.filter { _, state in
                state.lock.withLock { state in
                    if state.opening == nil {
                        prune(&state, now: time)
                        state.recent.forget(now: time)
                    }
                    if state.isIdle { state.retired = true }
                    return !state.retired
                }
            }
            return before - channels.count
        }
        if forgotten > 0 { channelTotal.subtract(forgotten, ordering: .relaxed) }
        return forgotten
    }
}
