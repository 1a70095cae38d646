import ServiceLifecycle
import SquallCore

/// Prunes expired messages and forgets idle channels every `interval`, so that memory follows
/// retention even on channels nobody publishes to or reads any more.
struct HubSweeper: Service {
    let hub: Hub
    let interval: Duration

    func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
            await hub.sweepYielding()
        }
    }
}
