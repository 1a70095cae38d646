// SPDX-License-Identifier: Apache-2.0

import SquallCore

/// How fast one client may do something — publish, or subscribe and unsubscribe: a token
/// bucket of `burst` that refills at `perSecond` (``TokenBucket``).
///
/// Contracts, for publishes (``SquallConfiguration/publishRate``): a WebSocket connection has a
/// bucket of its own (`/msg`, `/ws`); HTTP publishes share one bucket per client address, since
/// HTTP clients seldom keep a connection. A publish over the rate is not published and the
/// client is told: `/ws` replies `error` `rate_limited` and stays open, HTTP answers **429**
/// `rate_limited` with `Retry-After`, and a `/msg` client — whose frames have no reply — is
/// closed with 1008 once it has used up its burst, which only a client that keeps over the
/// rate does. Subscriptions (``SquallConfiguration/subscribeRate``) are charged the same way:
/// `/ws` subscribes and unsubscribes to its connection's bucket, and the subscription a `/msg`
/// socket or an SSE stream opens with to its address's (the upgrade or request gets 429).
public struct RateLimit: Sendable, Hashable, CustomStringConvertible {
    /// Events a second, on average; more than 0.
    public var perSecond: Double
    /// Events that may pass at once. At least 1.
    public var burst: Int

    /// A rate of `perSecond` with a burst of `burst`, ten seconds' worth unless given.
    public init(perSecond: Double, burst: Int? = nil) {
        self.perSecond = perSecond.isFinite && perSecond > 0 ? perSecond : 1
        let tenSeconds = (self.perSecond * 10).rounded(.up)
        self.burst = max(burst ?? (tenSeconds < 1e9 ? Int(tenSeconds) : 1_000_000_000), 1)  // trap-ok: converted only below 1e9
    }

    /// The default publish rate: 1,000 a second with a burst of 10,000 — far above any person
    /// typing, and a burst wide enough for a client that sends what it queued while reconnecting.
    public static let standard = RateLimit(perSecond: 1_000)

    /// The default subscribe rate: 100 a second with a burst of 1,000 — a reconnecting client
    /// subscribes to as many channels as `/ws` allows at once, and a client that churns
    /// subscriptions cannot make every watcher's presence stream its own.
    public static let standardSubscriptions = RateLimit(perSecond: 100)

    /// Reads `N/s`, `N/min` or `N/h` (a whole number of events per unit).
    /// - Throws: ``InvalidRateLimit`` for anything else.
    public init(parsing text: String) throws(InvalidRateLimit) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let count = Int(parts[0]), count >= 1 else { throw InvalidRateLimit(text: text) }
        let perSecond: Double
        switch parts[1] {
        case "s": perSecond = Double(count)
        case "min": perSecond = Double(count) / 60
        case "h": perSecond = Double(count) / 3600
        default: throw InvalidRateLimit(text: text)
        }
        self.init(perSecond: perSecond)
    }

    /// The bucket rate it stands for.
    public var bucketRate: TokenBucket.Rate { TokenBucket.Rate(perSecond: perSecond, burst: burst) }

    /// `1000/s, burst 10000`; a rate below one a second as publishes a minute or an hour.
    public var description: String {
        let (count, unit) = perSecond >= 1 ? (perSecond, "s") : perSecond * 60 >= 1 ? (perSecond * 60, "min") : (perSecond * 3600, "h")
        let whole = count.rounded()
        let text = whole < 1e9 ? "\(Int(whole))" : "\(count)"  // trap-ok: converted only below 1e9
        return "\(text)/\(unit), burst \(burst)"
    }

    /// A rate that is not `N/s`, `N/min` or `N/h`.
    public struct InvalidRateLimit: Error, CustomStringConvertible {
        /// What was given.
        public let text: String
        /// Says what a rate looks like.
        public var description: String { "\"\(text.prefix(64))\" is not a rate: write N/s, N/min or N/h, e.g. 100/s" }
    }
}
