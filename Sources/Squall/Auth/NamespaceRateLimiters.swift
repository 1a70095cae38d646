// SPDX-License-Identifier: Apache-2.0

import SquallCore
import Synchronization

/// One ``AddressRateLimiter`` per namespace that has a publish rate of its own, made when
/// first charged: at most as many as the configuration names, whatever clients send.
final class NamespaceRateLimiters: Sendable {
    private let policy: LivePolicy
    private let addresses: ClientAddresses
    private let limiters = Mutex<[String: AddressRateLimiter]>([:])

    init(policy: LivePolicy, addresses: ClientAddresses) {
        self.policy = policy
        self.addresses = addresses
    }

    /// Charges `client` a publish to namespace `name` (`""`: the default one), if it has a rate.
    func charge(_ name: String, _ client: IPAddress?) throws(APIError) {
        let policy = self.policy
        let rate: @Sendable () -> RateLimit? = {
            let access = policy.current.access
            return (name.isEmpty ? access.defaultNamespace : access.namespaces[name])?.publishRate
        }
        guard rate() != nil else { return }
        let limiter = limiters.withLock { limiters in
            if let limiter = limiters[name] { return limiter }
            let limiter = AddressRateLimiter(rate: rate, addresses: addresses)
            limiters[name] = limiter
            return limiter
        }
        try limiter.charge(client, action: "published in this namespace")
    }
}
