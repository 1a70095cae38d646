// SPDX-License-Identifier: Apache-2.0

import NIOCore

/// Whom a connection or a request is from, as per-address limits, rates and the access log see
/// it: an operator's choices of how wide one "address" is, and which peers are proxies that
/// say whom they forward for.
///
/// Contracts:
/// - **Networks, not hosts.** An IPv4 client counts as its /``ipv4Prefix`` (default /32, the
///   address) and an IPv6 client as its /``ipv6Prefix`` (default /64): anyone given a /64, as
///   IPv6 hosts usually are, would otherwise have 2⁶⁴ addresses and no limit.
/// - **Forwarded only by a trusted proxy, in the header it writes.** The one header the proxies
///   write (``forwardingHeader``: `X-Forwarded-For` by default, or RFC 7239's `Forwarded`) is
///   believed when — and only when — the peer is in ``trustedProxies``: then the client is the
///   nearest address in it that is not itself a trusted proxy. The other header is never read,
///   since a proxy passes a header it does not write on as the client sent it; so a client
///   cannot claim any address by sending either header itself. From any other peer both are
///   ignored.
public struct ClientAddresses: Sendable, Hashable {
    /// The header a trusted proxy says whom it forwards for in.
    public enum ForwardingHeader: String, Sendable, Hashable, CaseIterable {
        /// `X-Forwarded-For: client, proxy1, …` — what nginx (`$proxy_add_x_forwarded_for`),
        /// HAProxy (`option forwardfor`) and most cloud load balancers write.
        case xForwardedFor = "x-forwarded-for"
        /// RFC 7239's `Forwarded: for=client, for=proxy1` (`for=` of each element).
        case forwarded
    }

    /// Peers whose forwarding header is believed. Default none.
    public var trustedProxies: [AddressRange]
    /// The header they write. Default `X-Forwarded-For`.
    public var forwardingHeader: ForwardingHeader
    /// How many leading bits of an IPv4 address make one client. Default 32.
    public var ipv4Prefix: Int
    /// How many leading bits of an IPv6 address make one client. Default 64.
    public var ipv6Prefix: Int

    /// Client addresses as described; prefixes outside 1–32 and 1–128 are taken as the nearest.
    public init(
        trustedProxies: [AddressRange] = [], forwardingHeader: ForwardingHeader = .xForwardedFor, ipv4Prefix: Int = 32, ipv6Prefix: Int = 64
    ) {
        self.trustedProxies = trustedProxies
        self.forwardingHeader = forwardingHeader
        self.ipv4Prefix = min(max(ipv4Prefix, 1), 32)
        self.ipv6Prefix = min(max(ipv6Prefix, 1), 128)
    }

    /// The network `address` counts as, for limits and rates; `nil` for a peer without an IP.
    public func key(_ address: IPAddress?) -> IPAddress? {
        address?.network(ipv4: ipv4Prefix, ipv6: ipv6Prefix)
    }

    /// Whether `address` is a proxy whose forwarding headers are believed.
    public func isTrustedProxy(_ address: IPAddress?) -> Bool {
        guard let address else { return false }
        return trustedProxies.contains { $0.contains(address) }
    }

    /// The client a request came from: `peer`, or — when `peer` is a trusted proxy — the address
    /// `forwarding` (every line of the request's ``forwardingHeader``, joined with commas) names.
    /// A header that names no address Squall can read leaves the peer.
    public func client(peer: IPAddress?, forwarding: String?) -> IPAddress? {
        guard !trustedProxies.isEmpty, isTrustedProxy(peer), let forwarding, !forwarding.isEmpty else { return peer }
        let hops: [IPAddress?] =
            switch forwardingHeader {
            case .forwarded: Self.forwardedFor(forwarding)
            case .xForwardedFor: forwarding.split(separator: ",").map { IPAddress(Self.host(of: $0.trimmingSpaces())) }
            }
        // From the nearest hop outwards: the first that is not a trusted proxy is the client.
        var client = peer
        for hop in hops.reversed() {
            guard let hop else { return client }  // "unknown" or obfuscated: no further to believe
            client = hop
            if !isTrustedProxy(hop) { return hop }
        }
        return client
    }

    /// The `for=` of each element of a `Forwarded` header, in order; `nil` for one that is not
    /// an address.
    static func forwardedFor(_ header: String) -> [IPAddress?] {
        header.split(separator: ",").map { element in
            for pair in element.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, parts[0].trimmingSpaces().lowercased() == "for" else { continue }
                var value = parts[1].trimmingSpaces()
                if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = value.dropFirst().dropLast() }
                return IPAddress(host(of: value))
            }
            return nil
        }
    }

    /// The address in `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]` or `[2001:db8::1]:80`.
    static func host(of text: Substring) -> Substring {
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") { return text[text.index(after: text.startIndex)..<close] }
        if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") { return text[..<colon] }
        return text
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var trimmed = self
        while let first = trimmed.first, first == " " || first == "\t" { trimmed = trimmed.dropFirst() }
        while let last = trimmed.last, last == " " || last == "\t" { trimmed = trimmed.dropLast() }
        return trimmed
    }
}
