// SPDX-License-Identifier: Apache-2.0

/// How long a channel's log keeps messages, and a store the channel's position. Whichever
/// message bound is hit first applies.
public struct Retention: Sendable, Hashable {
    /// Most messages kept per channel (at least 1). Default 1,000.
    public var maxMessages: Int
    /// Oldest message kept. Default 1 hour.
    public var maxAge: Duration
    /// Most bytes kept per channel: every retained message's payload and each wire-format copy
    /// made of it (JSON envelope, frames, SSE event, compressed variants), counted as they are
    /// made. Default 16 MiB.
    public var maxBytes: Int
    /// How long a durable store keeps a channel's position (its epoch and last offset) after
    /// its last message, before it forgets the channel, rows and all; also how long a position
    /// given out while a channel was unpublished may resume into its first epoch. Default 7 days,
    /// as Centrifugo's `history_meta_ttl`; never less than ``maxAge``.
    public var metaTTL: Duration

    /// Retention with the given bounds; `maxMessages` below 1 is taken as 1, and `metaTTL` below
    /// `maxAge` as `maxAge`.
    public init(maxMessages: Int = 1000, maxAge: Duration = .seconds(3600), maxBytes: Int = 16 << 20, metaTTL: Duration = .seconds(7 * 86400)) {
        self.maxMessages = max(1, maxMessages)
        self.maxAge = maxAge
        self.maxBytes = maxBytes
        self.metaTTL = max(metaTTL, maxAge)
    }

    /// How often a durable store deletes what expired: half the age or meta TTL, whichever is
    /// less, between 1 s and 1 min — so nothing outlives its bound by more than half of it.
    public var sweepInterval: Duration {
        min(max(min(maxAge, metaTTL) / 2, .seconds(1)), .seconds(60))
    }
}
