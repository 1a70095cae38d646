// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SquallCore
import Synchronization

/// One token bucket per client network, for requests that arrive on connections too short to
/// keep one of their own (HTTP publishes, the subscription of a `/msg` socket or an SSE
/// stream).
///
/// Contracts: clients are keyed by network (``ClientAddresses``: an IPv6 /64 by default); a
/// bucket exists only while its network has used part of its burst; full ones are dropped
/// whenever the table has doubled since the last sweep, so it holds about twice the networks
/// that published within one burst's refill time, and a sweep's cost is spread over the
/// insertions that made it due. A peer without an IP address (a Unix socket) shares one
/// bucket. With `exemptsLoopback`, `127.0.0.1` and `::1` take no token, as they count towards
/// no per-address connection limit: a tool on this machine (a proxy there should be trusted,
/// `--trusted-proxy`, so that its clients are told apart).
///
/// The rate is read on every charge (``init(rate:addresses:exemptsLoopback:)``), so a reload
/// takes effect at the next request; `nil` lets every request pass.
final class AddressRateLimiter: Sendable {
    let rate: @Sendable () -> RateLimit?
    let addresses: ClientAddresses
    let exemptsLoopback: Bool

    private struct State {
        var buckets: [IPAddress?: TokenBucket] = [:]
        var nextSweep = AddressRateLimiter.firstSweep
    }

    private static let firstSweep = 1024
    private let state = Mutex(State())

    init(rate: @escaping @Sendable () -> RateLimit?, addresses: ClientAddresses = ClientAddresses(), exemptsLoopback: Bool = false) {
        self.rate = rate
        self.addresses = addresses
        self.exemptsLoopback = exemptsLoopback
    }

    /// A limiter of a fixed rate.
    convenience init(_ limit: RateLimit, addresses: ClientAddresses = ClientAddresses(), exemptsLoopback: Bool = false) {
        self.init(rate: { limit }, addresses: addresses, exemptsLoopback: exemptsLoopback)
    }

    /// Takes a token for `client`, or refuses with 429 `rate_limited`, saying what was done too
    /// fast (`action`) and when the next one passes.
    func charge(_ client: IPAddress?, action: String) throws(APIError) {
        guard let limit = rate(), let wait = take(client, limit) else { return }
        throw APIError.rateLimited(limit, wait: wait, action: action)
    }

    /// Takes a token for `client`: `nil` when it had one, else how long until it will.
    func take(_ client: IPAddress?, _ limit: RateLimit, now: ContinuousClock.Instant = .now) -> Duration? {
        if exemptsLoopback, client?.isLoopback == true { return nil }
        let key = addresses.key(client)
        let rate = limit.bucketRate
        return state.withLock { state in
            var bucket = state.buckets[key] ?? TokenBucket(full: rate, now: now)
            let taken = bucket.take(rate, now: now)
            state.buckets[key] = bucket
            if state.buckets.count >= state.nextSweep {
                state.buckets = state.buckets.filter { !$0.value.isFull(rate, now: now) }
                state.nextSweep = max(Self.firstSweep, state.buckets.count * 2)
            }
            return taken ? nil : bucket.waitTime(rate, now: now)
        }
    }

    /// Addresses with a bucket now.
    var trackedAddresses: Int { state.withLock { $0.buckets.count } }
}
