// SPDX-License-Identifier: Apache-2.0

/// A token bucket: it holds at most `burst` tokens, gains `perSecond` of them a second, and
/// each admitted event takes one. Bursts up to `burst` pass at once; past that, events pass at
/// `perSecond` on average.
///
/// Contracts: a value type with no clock of its own — the caller passes the time — so it is
/// tested without waiting. It keeps only its tokens and when it last counted them (24 bytes,
/// one per connection); the rate is passed in, from the one configuration every bucket shares.
public struct TokenBucket: Sendable {
    /// Tokens gained a second (more than 0) and the most a bucket holds (at least 1).
    public struct Rate: Sendable, Hashable {
        /// Tokens gained a second.
        public let perSecond: Double
        /// Most tokens held.
        public let burst: Double

        /// A rate; a `perSecond` that is not a positive number is 1, a `burst` below 1 is 1.
        public init(perSecond: Double, burst: Int) {
            self.perSecond = perSecond.isFinite && perSecond > 0 ? perSecond : 1
            self.burst = Double(max(burst, 1))
        }
    }

    private var tokens: Double
    private var updated: ContinuousClock.Instant

    /// A full bucket as of `now`.
    public init(full rate: Rate, now: ContinuousClock.Instant = .now) {
        tokens = rate.burst
        updated = now
    }

    /// Takes a token if there is one as of `now`; `false` leaves the bucket as it was.
    public mutating func take(_ rate: Rate, now: ContinuousClock.Instant = .now) -> Bool {
        let available = available(rate, now: now)
        guard available >= 1 else { return false }
        tokens = available - 1
        updated = max(updated, now)
        return true
    }

    /// How long from `now` until a token is there (zero when one is).
    public func waitTime(_ rate: Rate, now: ContinuousClock.Instant = .now) -> Duration {
        let missing = 1 - available(rate, now: now)
        guard missing > 0 else { return .zero }
        return .seconds(missing / rate.perSecond)
    }

    /// Whether the bucket is full again as of `now`: it then holds nothing a new one would not.
    public func isFull(_ rate: Rate, now: ContinuousClock.Instant = .now) -> Bool { available(rate, now: now) >= rate.burst }

    private func available(_ rate: Rate, now: ContinuousClock.Instant) -> Double {
        let elapsed = max(now - updated, .zero)
        let seconds = elapsed.inSeconds
        return min(rate.burst, tokens + seconds * rate.perSecond)
    }
}
