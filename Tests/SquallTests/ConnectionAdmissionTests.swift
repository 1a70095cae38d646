// SPDX-License-Identifier: Apache-2.0

import NIOCore
import Testing

@testable import Squall

/// Which connections are admitted under ``ConnectionLimits``, and how addresses are keyed.
@Suite struct ConnectionAdmissionTests {
    static func ip(_ text: String) -> IPAddress? { IPAddress(text) }

    private func isAdmitted(_ decision: ConnectionAdmission.Decision) -> Bool {
        if case .admitted = decision { return true }
        return false
    }

    private func refusal(_ decision: ConnectionAdmission.Decision) -> APIError? {
        if case .refused(let error) = decision { return error }
        return nil
    }

    @Test func theConnectionOverTheTotalIsRefusedAndAClosedOneMakesRoom() throws {
        let admission = ConnectionAdmission(.init(maxConnections: 2, maxPerAddress: 10), descriptorLimit: nil)
        #expect(isAdmitted(admission.admit(Self.ip("10.0.0.1"))))
        #expect(isAdmitted(admission.admit(Self.ip("10.0.0.2"))))
        let error = try #require(refusal(admission.admit(Self.ip("10.0.0.3"))))
        #expect(error.code == .tooManyConnections)
        #expect(error.status == .serviceUnavailable)
        #expect(admission.openConnections == 2)
        admission.releaseRefused()
        admission.release(Self.ip("10.0.0.1"))
        #expect(isAdmitted(admission.admit(Self.ip("10.0.0.3"))))
    }

    @Test func oneAddressMayNotTakeMoreThanItsShare() {
        let admission = ConnectionAdmission(.init(maxConnections: 100, maxPerAddress: 2), descriptorLimit: nil)
        #expect(isAdmitted(admission.admit(Self.ip("10.0.0.1"))))
        #expect(isAdmitted(admission.admit(Self.ip("10.0.0.1"))))
        #expect(refusal(admission.admit(Self.ip("10.0.0.1")))?.code == .tooManyConnections)
        #expect(refusal(admission.admit(Self.ip("::ffff:10.0.0.1")))?.code == .tooManyConnections)
        #expect(isAdmitted(admission.admit(Self.ip("10.0.0.2"))))
        #expect(admission.openConnections == 3)
        admission.release(Self.ip("10.0.0.1"))
        #expect(isAdmitted(admission.admit(Self.ip("10.0.0.1"))))
    }

    @Test func anIPv6ClientIsItsSlash64UnlessToldOtherwise() {
        let admission = ConnectionAdmission(.init(maxConnections: 100, maxPerAddress: 2), descriptorLimit: nil)
        #expect(isAdmitted(admission.admit(Self.ip("2001:db8:1:2::1"))))
        #expect(isAdmitted(admission.admit(Self.ip("2001:db8:1:2:ffff::9"))))
        #expect(refusal(admission.admit(Self.ip("2001:db8:1:2:abcd::1"))) != nil, "a third host of the same /64")
        #expect(isAdmitted(admission.admit(Self.ip("2001:db8:1:3::1"))), "another /64")
        let wide = ConnectionAdmission(
            .init(maxConnections: 100, maxPerAddress: 1), addresses: ClientAddresses(ipv4Prefix: 24, ipv6Prefix: 128), descriptorLimit: nil)
        #expect(isAdmitted(wide.admit(Self.ip("10.0.0.1"))))
        #expect(refusal(wide.admit(Self.ip("10.0.0.200"))) != nil, "one /24")
        #expect(isAdmitted(wide.admit(Self.ip("2001:db8::1"))))
        #expect(isAdmitted(wide.admit(Self.ip("2001:db8::2"))), "/128: every IPv6 address its own")
    }

    @Test func loopbackAndTrustedProxiesCountTowardsTheTotalOnly() {
        let addresses = ClientAddresses(trustedProxies: [try! AddressRange(parsing: "10.9.0.0/16")])
        let admission = ConnectionAdmission(.init(maxConnections: 7, maxPerAddress: 1), addresses: addresses, descriptorLimit: nil)
        for _ in 1...3 { #expect(isAdmitted(admission.admit(Self.ip("127.0.0.1")))) }
        for _ in 1...2 { #expect(isAdmitted(admission.admit(Self.ip("::1")))) }
        for _ in 1...2 { #expect(isAdmitted(admission.admit(Self.ip("10.9.3.4")))) }
        #expect(refusal(admission.admit(Self.ip("127.0.0.1")))?.code == .tooManyConnections)
    }

    @Test func aTrustedProxysConnectionCountsAgainstTheClientItForwardsFor() {
        let addresses = ClientAddresses(trustedProxies: [try! AddressRange(parsing: "10.9.0.0/16")])
        let admission = ConnectionAdmission(.init(maxConnections: 100, maxPerAddress: 1), addresses: addresses, descriptorLimit: nil)
        #expect(admission.admitForwarded(Self.ip("203.0.113.7")) == nil)
        #expect(admission.admitForwarded(Self.ip("203.0.113.7"))?.code == .tooManyConnections)
        #expect(admission.admitForwarded(Self.ip("203.0.113.8")) == nil)
        admission.releaseForwarded(Self.ip("203.0.113.7")!)
        #expect(admission.admitForwarded(Self.ip("203.0.113.7")) == nil)
    }

    @Test func refusedConnectionsAreDroppedUnansweredOnceTheyWouldTakeTheLastDescriptors() {
        let admission = ConnectionAdmission(.init(maxConnections: 10, maxPerAddress: 2), descriptorLimit: nil)
        for _ in 1...2 { #expect(isAdmitted(admission.admit(Self.ip("10.0.0.1")))) }
        var refused = 0
        var dropped = 0
        for _ in 0..<30 {
            switch admission.admit(Self.ip("10.0.0.1")) {
            case .refused: refused += 1
            case .dropped: dropped += 1
            case .admitted: Issue.record("admitted over its share")
            }
        }
        #expect(
            refused == 8 + ConnectionAdmission.refusalAllowance && dropped == 30 - refused, "2 open and the rest being refused fill the 10 and the allowance")
        #expect(isAdmitted(admission.admit(Self.ip("10.0.0.2"))), "another address is still served")
    }

    @Test func theTotalIsLoweredToWhatTheProcessMayOpen() {
        let admission = ConnectionAdmission(.init(maxConnections: 100_000), descriptorLimit: 1_024)
        #expect(admission.limits.maxConnections == 1_024 - ConnectionAdmission.reservedDescriptors)
        #expect(ConnectionAdmission(.init(maxConnections: 10), descriptorLimit: 1_024).limits.maxConnections == 10)
        #expect(ConnectionAdmission(.init(maxConnections: 10), descriptorLimit: 8).limits.maxConnections == 1)
    }

    static let sameAddress: [(String, String)] = [
        ("10.1.2.3", "::ffff:10.1.2.3"),
        ("2001:db8::1", "2001:0db8:0:0:0:0:0:1"),
    ]

    @Test(arguments: sameAddress)
    func anAddressIsItsIPWithoutThePort(_ one: String, _ other: String) throws {
        let first = try #require(IPAddress(try SocketAddress(ipAddress: one, port: 1)))
        let second = try #require(IPAddress(try SocketAddress(ipAddress: other, port: 2)))
        #expect(first == second && first == IPAddress(one))
        #expect(IPAddress(one)?.description == IPAddress(other)?.description)
    }

    @Test func differentIPsAreDifferentAddresses() {
        #expect(IPAddress("10.1.2.3") != IPAddress("10.1.2.4"))
        #expect(IPAddress("::1") != IPAddress("::2"))
        #expect(IPAddress(nil as SocketAddress?) == nil && IPAddress("not an address") == nil)
        #expect(IPAddress("2001:db8::1")?.description == "2001:db8::1" && IPAddress("10.1.2.3")?.description == "10.1.2.3")
    }

    @Test(arguments: ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
    func loopbackIsTheMachineItself(_ ip: String) {
        #expect(IPAddress(ip)?.isLoopback == true)
    }

    @Test(arguments: ["127.0.0.2", "10.0.0.1", "::2", "::"])
    func otherAddressesAreNotLoopback(_ ip: String) {
        #expect(IPAddress(ip)?.isLoopback == false)
    }

    @Test func addressRangesParseAndContain() throws {
        let v4 = try AddressRange(parsing: "10.0.0.0/8")
        #expect(v4.contains(IPAddress("10.255.1.2")!) && !v4.contains(IPAddress("11.0.0.1")!) && !v4.contains(IPAddress("::a00:1")!))
        let v6 = try AddressRange(parsing: "fd00::/8")
        #expect(v6.contains(IPAddress("fd12::1")!) && !v6.contains(IPAddress("fe80::1")!))
        #expect(try AddressRange(parsing: "127.0.0.1").contains(IPAddress("127.0.0.1")!))
        #expect(try AddressRange(parsing: "192.168.1.77/24").description == "192.168.1.0/24")
        for bad in ["", "10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0.0/x", "example.com", "10.0.0.0/8/8"] {
            #expect(throws: AddressRange.InvalidAddressRange.self, "\(bad)") { try AddressRange(parsing: bad) }
        }
    }

    @Test func forwardingHeadersAreBelievedFromTrustedProxiesOnly() throws {
        let addresses = ClientAddresses(trustedProxies: [try AddressRange(parsing: "127.0.0.0/8"), try AddressRange(parsing: "10.0.0.0/8")])
        let proxy = IPAddress("127.0.0.1")
        #expect(addresses.client(peer: proxy, forwarding: "203.0.113.9") == IPAddress("203.0.113.9"))
        // The nearest hop that is not a trusted proxy: what the client wrote itself is not believed.
        #expect(addresses.client(peer: proxy, forwarding: "1.2.3.4, 203.0.113.9, 10.1.1.1") == IPAddress("203.0.113.9"))
        #expect(addresses.client(peer: proxy, forwarding: nil) == proxy)
        let stranger = IPAddress("198.51.100.4")
        #expect(addresses.client(peer: stranger, forwarding: "203.0.113.9") == stranger, "an untrusted peer's header is ignored")
        #expect(ClientAddresses().client(peer: proxy, forwarding: "203.0.113.9") == proxy, "no proxy is trusted by default")
        // RFC 7239's header, when the proxies write that one instead.
        var rfc7239 = addresses
        rfc7239.forwardingHeader = .forwarded
        #expect(rfc7239.client(peer: proxy, forwarding: "for=192.0.2.60;proto=http, for=\"[2001:db8::17]:4711\"") == IPAddress("2001:db8::17"))
        #expect(rfc7239.client(peer: proxy, forwarding: "for=unknown") == proxy, "an address it cannot read leaves the proxy")
    }

    @Test func onlyTheHeaderTheProxyWritesIsRead() {
        // nginx sets X-Forwarded-For and passes a client's own Forwarded header on untouched:
        // reading that one would let every request choose its address.
        let head = ByteBuffer(string: "GET /msg HTTP/1.1\r\nForwarded: for=198.51.100.1\r\nX-Forwarded-For: 203.0.113.9\r\nx-forwarded-for: 192.0.2.1\r\n\r\n")
        #expect(ForwardingHeaders.value(of: "x-forwarded-for", in: head) == "203.0.113.9, 192.0.2.1")
        let addresses = ClientAddresses(trustedProxies: [try! AddressRange(parsing: "127.0.0.1")])
        let forwarding = ForwardingHeaders.value(of: addresses.forwardingHeader.rawValue, in: head)
        #expect(addresses.client(peer: IPAddress("127.0.0.1"), forwarding: forwarding) == IPAddress("192.0.2.1"))
    }

    @Test func anAddressRateLimiterKeepsABucketPerNetworkAndSaysHowLongToWait() {
        let rate = RateLimit(perSecond: 2, burst: 2)
        let limiter = AddressRateLimiter(rate)
        let now = ContinuousClock.now
        #expect(limiter.take(Self.ip("10.0.0.1"), rate, now: now) == nil)
        #expect(limiter.take(Self.ip("10.0.0.1"), rate, now: now) == nil)
        #expect(limiter.take(Self.ip("10.0.0.1"), rate, now: now) == .milliseconds(500))
        #expect(limiter.take(Self.ip("10.0.0.2"), rate, now: now) == nil)
        #expect(limiter.take(Self.ip("10.0.0.1"), rate, now: now + .milliseconds(500)) == nil)
        #expect(limiter.take(Self.ip("2001:db8::1"), rate, now: now) == nil)
        #expect(limiter.take(Self.ip("2001:db8::2"), rate, now: now) == nil)
        #expect(limiter.take(Self.ip("2001:db8::3"), rate, now: now) != nil, "one /64, one bucket")
        let exempt = AddressRateLimiter(RateLimit(perSecond: 1, burst: 1), exemptsLoopback: true)
        for _ in 0..<5 { #expect(exempt.take(Self.ip("127.0.0.1"), rate, now: now) == nil) }
    }

    @Test func anAddressRateLimiterForgetsAddressesWhoseBucketsAreFull() {
        let rate = RateLimit(perSecond: 1, burst: 1)
        let limiter = AddressRateLimiter(rate)
        let now = ContinuousClock.now
        for host in 0..<1_100 {
            _ = limiter.take(Self.ip("10.0.\(host / 256).\(host % 256)"), rate, now: now + .seconds(host))
        }
        #expect(limiter.trackedAddresses < 200)
    }
}
