// SPDX-License-Identifier: Apache-2.0

import Testing

@testable import Squall

/// `--publish-rate` values and what they stand for.
@Suite struct PublishRateTests {
    static let parsed: [(String, Double, Int, String)] = [
        ("100/s", 100, 1_000, "100/s, burst 1000"),
        ("1/s", 1, 10, "1/s, burst 10"),
        ("120/min", 2, 20, "2/s, burst 20"),
        ("30/min", 0.5, 5, "30/min, burst 5"),
        ("3600/h", 1, 10, "1/s, burst 10"),
        ("6/h", 6.0 / 3600, 1, "6/h, burst 1"),
    ]

    @Test(arguments: parsed)
    func readsARateAndGivesItTenSecondsOfBurst(_ text: String, _ perSecond: Double, _ burst: Int, _ description: String) throws {
        let rate = try RateLimit(parsing: text)
        #expect(abs(rate.perSecond - perSecond) < 1e-9)
        #expect(rate.burst == burst)
        #expect(rate.description == description)
    }

    @Test(arguments: ["", "100", "/s", "0/s", "-1/s", "1.5/s", "100/sec", "100/s/s", "100 /s", "x/s", "99999999999999999999/s"])
    func refusesWhatIsNotARate(_ text: String) {
        #expect(throws: RateLimit.InvalidRateLimit.self) { try RateLimit(parsing: text) }
    }

    @Test func theDefaultIsAThousandASecondWithABurstOfTenThousand() {
        #expect(RateLimit.standard.description == "1000/s, burst 10000")
        #expect(SquallConfiguration().publishRate == .standard)
    }

    @Test func anExplicitBurstWins() {
        #expect(RateLimit(perSecond: 5, burst: 2).bucketRate == .init(perSecond: 5, burst: 2))
    }
}
