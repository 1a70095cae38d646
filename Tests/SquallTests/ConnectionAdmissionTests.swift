import NIOCore
import Testing

@testable import Squall

/// Which connections are admitted under ``ConnectionLimits``, and how addresses are keyed.
@Suite struct ConnectionAdmissionTests {
    static func address(_ ip: String, port: Int = 40_000) -> SocketAddress? {
        try? SocketAddress(ipAddress: ip, port: port)
    }

    @Test func theConnectionOverTheTotalIsRefusedAndAClosedOneMakesRoom() throws {
        let admission = ConnectionAdmission(.init(maxConnections: 2, maxPerAddress: 10), descriptorLimit: nil)
        #expect(admission.admit(Self.address("10.0.0.1")) == nil)
        #expect(admission.admit(Self.address("10.0.0.2")) == nil)
        let refusal = try #require(admission.admit(Self.address("10.0.0.3")))
        #expect(refusal.code == .tooManyConnections)
        #expect(refusal.status == .serviceUnavailable)
        #expect(admission.openConnections == 2)
        admission.release(Self.address("10.0.0.1"))
        #expect(admission.admit(Self.address("10.0.0.3")) == nil)
    }

    @Test func oneAddressMayNotTakeMoreThanItsShare() {
        let admission = ConnectionAdmission(.init(maxConnections: 100, maxPerAddress: 2), descriptorLimit: nil)
        #expect(admission.admit(Self.address("10.0.0.1", port: 1)) == nil)
        #expect(admission.admit(Self.address("10.0.0.1", port: 2)) == nil)
        #expect(admission.admit(Self.address("10.0.0.1", port: 3))?.code == .tooManyConnections)
        #expect(admission.admit(Self.address("::ffff:10.0.0.1", port: 4))?.code == .tooManyConnections)
        #expect(admission.admit(Self.address("10.0.0.2")) == nil)
        #expect(admission.openConnections == 3)
        admission.release(Self.address("10.0.0.1", port: 1))
        #expect(admission.admit(Self.address("10.0.0.1", port: 5)) == nil)
    }

    @Test func loopbackCountsTowardsTheTotalOnly() {
        let admission = ConnectionAdmission(.init(maxConnections: 5, maxPerAddress: 1), descriptorLimit: nil)
        for port in 1...3 { #expect(admission.admit(Self.address("127.0.0.1", port: port)) == nil) }
        for port in 1...2 { #expect(admission.admit(Self.address("::1", port: port)) == nil) }
        #expect(admission.admit(Self.address("127.0.0.1", port: 9))?.code == .tooManyConnections)
    }

    @Test func theTotalIsLoweredToWhatTheProcessMayOpen() {
        let admission = ConnectionAdmission(.init(maxConnections: 100_000), descriptorLimit: 1_024)
        #expect(admission.limits.maxConnections == 1_024 - ConnectionAdmission.reservedDescriptors)
        #expect(ConnectionAdmission(.init(maxConnections: 10), descriptorLimit: 1_024).limits.maxConnections == 10)
        #expect(ConnectionAdmission(.init(maxConnections: 10), descriptorLimit: 8).limits.maxConnections == 1)
    }

    static let sameKey: [(String, String)] = [
        ("10.1.2.3", "::ffff:10.1.2.3"),
        ("2001:db8::1", "2001:0db8:0:0:0:0:0:1"),
    ]

    @Test(arguments: sameKey)
    func anAddressIsItsIPWithoutThePort(_ one: String, _ other: String) {
        #expect(AddressKey(Self.address(one, port: 1)) == AddressKey(Self.address(other, port: 2)))
    }

    @Test func differentIPsAreDifferentKeys() {
        #expect(AddressKey(Self.address("10.1.2.3")) != AddressKey(Self.address("10.1.2.4")))
        #expect(AddressKey(Self.address("::1")) != AddressKey(Self.address("::2")))
        #expect(AddressKey(nil) == nil)
    }

    @Test(arguments: ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
    func loopbackIsTheMachineItself(_ ip: String) {
        #expect(AddressKey(Self.address(ip))?.isLoopback == true)
    }

    @Test(arguments: ["127.0.0.2", "10.0.0.1", "::2", "::"])
    func otherAddressesAreNotLoopback(_ ip: String) {
        #expect(AddressKey(Self.address(ip))?.isLoopback == false)
    }

    @Test func anAddressRateLimiterKeepsABucketPerAddressAndSaysHowLongToWait() {
        let limiter = AddressRateLimiter(.init(perSecond: 2, burst: 2))
        let now = ContinuousClock.now
        #expect(limiter.take(Self.address("10.0.0.1", port: 1), now: now) == nil)
        #expect(limiter.take(Self.address("10.0.0.1", port: 2), now: now) == nil)
        #expect(limiter.take(Self.address("10.0.0.1", port: 3), now: now) == .milliseconds(500))
        #expect(limiter.take(Self.address("10.0.0.2"), now: now) == nil)
        #expect(limiter.take(Self.address("10.0.0.1"), now: now + .milliseconds(500)) == nil)
    }

    @Test func anAddressRateLimiterForgetsAddressesWhoseBucketsAreFull() {
        let limiter = AddressRateLimiter(.init(perSecond: 1, burst: 1))
        let now = ContinuousClock.now
        for host in 0..<1_100 {
            _ = limiter.take(Self.address("10.0.\(host / 256).\(host % 256)"), now: now + .seconds(host))
        }
        #expect(limiter.trackedAddresses < 200)
    }
}
