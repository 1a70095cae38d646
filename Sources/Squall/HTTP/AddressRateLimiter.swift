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
final class AddressRateLimiter: Sendable {
    let limit: RateLimit
    let addresses: ClientAddresses
    let exemptsLoopback: Bool

    private struct State {
        var buckets: [IPAddress?: TokenBucket] = [:]
        var nextSweep = AddressRateLimiter.firstSweep
    }

    private static let firstSweep = 1024
    private let state = Mutex(State())

    init(_ limit: RateLimit, addresses: ClientAddresses = ClientAddresses(), exemptsLoopback: Bool = false) {
        self.limit = limit
        self.addresses = addresses
        self.exemptsLoopback = exemptsLoopback
    }

    /// Takes a token for `client`, or refuses with 429 `rate_limited`, saying what was done too
    /// fast (`action`) and when the next one passes.
    func charge(_ client: IPAddress?, action: String) throws(APIError) {
        guard let wait = take(client) else { return }
        throw APIError.rateLimited(limit, wait: wait, action: action)
    }

    /// Takes a token for `client`: `nil` when it had one, else how long until it will.
    func take(_ client: IPAddress?, now: ContinuousClock.Instant = .now) -> Duration? {
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
