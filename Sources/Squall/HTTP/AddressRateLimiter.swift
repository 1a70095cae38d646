import NIOCore
import SquallCore
import Synchronization

/// One token bucket per client IP address, for requests that arrive on connections too short
/// to keep one of their own (HTTP publishes, the subscription of a `/msg` socket or an SSE
/// stream).
///
/// Contracts: a bucket exists only while its address has used part of its burst; full ones
/// are dropped whenever the table has doubled since the last sweep, so it holds about twice
/// the addresses that published within one burst's refill time, and a sweep's cost is spread
/// over the insertions that made it due. A peer without an IP address (a Unix socket) shares
/// one bucket. With `exemptsLoopback`, `127.0.0.1` and `::1` take no token, as they count
/// towards no per-address connection limit: a proxy or a tool on this machine.
final class AddressRateLimiter: Sendable {
    let rate: TokenBucket.Rate
    let exemptsLoopback: Bool

    private struct State {
        var buckets: [AddressKey?: TokenBucket] = [:]
        var nextSweep = AddressRateLimiter.firstSweep
    }

    private static let firstSweep = 1024
    private let state = Mutex(State())

    init(_ rate: TokenBucket.Rate, exemptsLoopback: Bool = false) {
        self.rate = rate
        self.exemptsLoopback = exemptsLoopback
    }

    /// Takes a token for `address`: `nil` when it had one, else how long until it will.
    func take(_ address: SocketAddress?, now: ContinuousClock.Instant = .now) -> Duration? {
        let key = AddressKey(address)
        if exemptsLoopback, key?.isLoopback == true { return nil }
        let rate = self.rate
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
