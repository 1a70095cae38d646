// SPDX-License-Identifier: Apache-2.0

import Testing

@testable import SquallCore

/// A token bucket passes its burst at once, then its rate, and keeps no more than its burst.
@Suite struct TokenBucketTests {
    static let start = ContinuousClock.now
    static let rate = TokenBucket.Rate(perSecond: 10, burst: 5)

    @Test func aFullBucketPassesItsBurstAtOnceAndNoMore() {
        let bucket = Bucket(full: Self.rate, now: Self.start)
        for _ in 0..<5 { #expect(bucket.take(Self.rate, now: Self.start)) }
        #expect(!bucket.take(Self.rate, now: Self.start))
    }

    @Test func anEmptyBucketRefillsAtItsRate() {
        let bucket = Bucket(full: Self.rate, now: Self.start)
        for _ in 0..<5 { _ = bucket.take(Self.rate, now: Self.start) }
        #expect(bucket.waitTime(Self.rate, now: Self.start) == .milliseconds(100))
        #expect(!bucket.take(Self.rate, now: Self.start + .milliseconds(99)))
        #expect(bucket.take(Self.rate, now: Self.start + .milliseconds(100)))
        #expect(!bucket.take(Self.rate, now: Self.start + .milliseconds(100)))
        let later = Self.start + .milliseconds(300)
        #expect(bucket.take(Self.rate, now: later))
        #expect(bucket.take(Self.rate, now: later))
        #expect(!bucket.take(Self.rate, now: later))
    }

    @Test func aBucketNeverHoldsMoreThanItsBurst() {
        let bucket = Bucket(full: Self.rate, now: Self.start)
        let muchLater = Self.start + .seconds(3600)
        #expect(bucket.isFull(Self.rate, now: muchLater))
        for _ in 0..<5 { #expect(bucket.take(Self.rate, now: muchLater)) }
        #expect(!bucket.take(Self.rate, now: muchLater))
    }

    @Test func aRefusedTakeLeavesTheBucketAsItWas() {
        let bucket = Bucket(full: TokenBucket.Rate(perSecond: 1, burst: 1), now: Self.start)
        let rate = TokenBucket.Rate(perSecond: 1, burst: 1)
        #expect(bucket.take(rate, now: Self.start))
        for step in 1...9 { #expect(!bucket.take(rate, now: Self.start + .milliseconds(step * 100))) }
        #expect(bucket.take(rate, now: Self.start + .seconds(1)))
    }

    @Test func aClockThatGoesBackGrantsNothing() {
        let bucket = Bucket(full: Self.rate, now: Self.start + .seconds(1))
        for _ in 0..<5 { _ = bucket.take(Self.rate, now: Self.start + .seconds(1)) }
        #expect(!bucket.take(Self.rate, now: Self.start))
    }

    @Test func nonsenseRatesBecomeOnePerSecondAndABurstOfOne() {
        for perSecond in [0, -3, .nan, .infinity] {
            #expect(TokenBucket.Rate(perSecond: perSecond, burst: 0) == TokenBucket.Rate(perSecond: 1, burst: 1))
        }
    }

    @Test func aBucketIsSmall() {
        #expect(MemoryLayout<TokenBucket>.size <= 24)
    }
}

/// A bucket in a class, for `#expect`, which cannot call a mutating method on a variable.
private final class Bucket {
    var value: TokenBucket

    init(full rate: TokenBucket.Rate, now: ContinuousClock.Instant) {
        value = TokenBucket(full: rate, now: now)
    }

    func take(_ rate: TokenBucket.Rate, now: ContinuousClock.Instant) -> Bool { value.take(rate, now: now) }
    func waitTime(_ rate: TokenBucket.Rate, now: ContinuousClock.Instant) -> Duration { value.waitTime(rate, now: now) }
    func isFull(_ rate: TokenBucket.Rate, now: ContinuousClock.Instant) -> Bool { value.isFull(rate, now: now) }
}
