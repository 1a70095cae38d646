// SPDX-License-Identifier: Apache-2.0

import ServiceLifecycle
import SquallCore

/// Prunes expired messages and forgets idle channels every `interval`, so that memory follows
/// retention even on channels nobody publishes to or reads any more.
///
/// After a sweep that forgot many channels (``trimAfter``) it gives the memory they held back to
/// the system (glibc's `malloc_trim`): freed, it would otherwise stay in the process's arenas,
/// and a stranger who made a server open 100,000 channels once would leave it that much larger
/// for good.
struct HubSweeper: Service {
    let hub: Hub
    let interval: Duration

    /// Forgetting at least this many channels in one sweep gives memory back to the system.
    static let trimAfter = 1000

    func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
            if await hub.sweepYielding() >= Self.trimAfter { await MemoryTrimmer.returnFreedMemory() }
        }
    }
}
