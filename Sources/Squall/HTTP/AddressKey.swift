import NIOCore

/// A client's IP address without its port, as a dictionary key that costs no allocation; an
/// IPv4 address and its IPv4-mapped IPv6 form (`::ffff:a.b.c.d`) are one key.
struct AddressKey: Hashable, Sendable {
    private let high: UInt64
    private let low: UInt64

    /// The key of `address`'s IP; `nil` when it has none (a Unix socket).
    init?(_ address: SocketAddress?) {
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

    private init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// `127.0.0.1` or `::1`: a peer on this machine.
    var isLoopback: Bool { high == 0 && (low == 1 || low == 0xFFFF_7F00_0001) }
}
