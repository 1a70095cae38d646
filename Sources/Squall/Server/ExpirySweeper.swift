// SPDX-License-Identifier: Apache-2.0

import ServiceLifecycle

/// Sweeps ``ExpiringConnections`` once a second: connections whose token expired are closed.
struct ExpirySweeper: Service {
    let connections: ExpiringConnections

    func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
            } catch {
                return
            }
            connections.sweep()
        }
    }
}
