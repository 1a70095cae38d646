// SPDX-License-Identifier: Apache-2.0

import Logging
import ServiceLifecycle

/// Fetches JWKS URLs again every `jwks-refresh` (``AuthConfiguration/jwksRefresh``), so that
/// keys an identity provider adds or rotates are taken without a restart. A fetch that fails
/// keeps the keys there were, and is logged.
struct KeyRefresher: Service {
    let policy: LivePolicy
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            let auth = policy.current.access.auth
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: auth.jwksRefresh) }
            } catch {
                return
            }
            guard policy.fetchesKeys else { continue }
            do {
                try await policy.reloadKeys(policy.current.access.auth)
            } catch {
                logger.warning("JWKS refresh failed; the keys there were stay", metadata: ["error": "\(error)"])
            }
        }
    }
}
