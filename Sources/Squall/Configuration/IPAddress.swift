// SPDX-License-Identifier: Apache-2.0

import NIOCore

/// An IP address as 128 bits: an IPv6 address as it is, an IPv4 address as its IPv4-mapped IPv6
/// form (`::ffff:a.b.c.d`), so that one address has one value whichever family it came in.
/// Costs no allocation: it keys the per-address limits and rates.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    let high: UInt64
    let low: UInt64

    /// The IP of `address`; `nil` when it has none (a Unix socket).
    public init?(_ address: SocketAddress?) {
        switch address {
        case .v4(let v4):
            self.init(high: 0, low: 0xFFFF_0000_0000 | UInt64(UInt32(bigEndian: v4.address.sin_addr.s_addr)))
        case .v6(let v6):
            var storage = v6.address.sin6_addr
            let (high, low) = withUnsafeBytes(of: &storage) { bytes in
                (bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self).bigEndian, bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self).bigEndian)
            }
            self.init(high: high, low: low)
        default:
            return nil
        }
    }

    /// Parses `192.0.2.1` or `2001:db8::1`; `nil` for anything else.
    public init?(_ text: some StringProtocol) {
        guard !text.isEmpty, text.utf8.count <= 64, let address = try? SocketAddress(ipAddress: String(text), port: 0) else { return nil }
        self.init(address)
    }

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// An IPv4 address (kept IPv4-mapped).
    public var isIPv4: Bool { high == 0 && low >> 32 == 0xFFFF }

    /// `127.0.0.1` or `::1`: a peer on this machine.
    public var isLoopback: Bool { high == 0 && (low == 1 || low == 0xFFFF_7F00_0001) }

    /// The address with all but its first `bits` (of 128) set to zero.
    func keeping(_ bits: Int) -> IPAddress {
        let bits = min(max(bits, 0), 128)
        let highMask: UInt64 = bits >= 64 ? .max : bits == 0 ? 0 : ~(UInt64.max >> UInt64(bits))
        let lowMask: UInt64 = bits <= 64 ? 0 : bits == 128 ? .max : ~(UInt64.max >> UInt64(bits - 64))
        return IPAddress(high: high & highMask, low: low & lowMask)
    }

    /// The network of `ipv4` bits for an IPv4 address, of `ipv6` bits for an IPv6 one.
    public func network(ipv4: Int, ipv6: Int) -> IPAddress {
        isIPv4 ? keeping(96 + ipv4) : keeping(ipv6)
    }

    /// `192.0.2.1` or `2001:db8::1`, as the system writes it.
    public var description: String {
        var bytes = ByteBuffer()
        if isIPv4 {
            bytes.writeInteger(UInt32(truncatingIfNeeded: low))
        } else {
            bytes.writeInteger(high)
            bytes.writeInteger(low)
        }
        return (try? SocketAddress(packedIPAddress: bytes, port: 0))?.ipAddress ?? "?"
    }
}
