// SPDX-License-Identifier: Apache-2.0

import ServiceLifecycle
import SquallCore

/// On graceful shutdown, closes every WebSocket with 1001 (going away) and waits, at most
/// `timeout`, for the clients to finish the close handshake.
///
/// It runs in the server's service group after the HTTP server, so it is shut down before it:
/// clients hear 1001 while the server is still up to complete their handshakes. (Upgraded
/// connections are not the HTTP server's tasks; nothing else would close them.)
struct ConnectionDrain: Service {
    let connections: ConnectionPool
    let timeout: Duration
    /// Set as draining starts, for `/readyz`: the drain runs before the listener is told to stop.
    let draining: DrainingFlag

    func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            return  // cancelled, not shut down gracefully: nothing to drain
        }
        draining.start()
        connections.closeAll(.shutdown)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await connections.waitUntilEmpty() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }
}
