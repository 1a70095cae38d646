// SPDX-License-Identifier: Apache-2.0

/// A block of IP addresses, written in CIDR notation: `10.0.0.0/8`, `fd00::/8`, or one address
/// (`127.0.0.1` is `127.0.0.1/32`).
public struct AddressRange: Hashable, Sendable, CustomStringConvertible {
    /// The first address of the block.
    public let network: IPAddress
    /// How many leading bits every address of the block shares with ``network``: 0–32 for IPv4,
    /// 0–128 for IPv6.
    public let prefixLength: Int

    /// Reads `ADDRESS[/PREFIX]`.
    /// - Throws: ``InvalidAddressRange`` for anything else, or a prefix the family cannot have.
    public init(parsing text: String) throws(InvalidAddressRange) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else { throw InvalidAddressRange(text: text) }
        let maximum = address.isIPv4 ? 32 : 128
        let length: Int
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), (0...maximum).contains(parsed), parts[1].allSatisfy(\.isASCII) else {
                throw InvalidAddressRange(text: text)
            }
            length = parsed
        } else {
            length = maximum
        }
        prefixLength = length
        network = address.network(ipv4: length, ipv6: length)
    }

    /// Whether `address` is in the block.
    public func contains(_ address: IPAddress) -> Bool {
        guard address.isIPv4 == network.isIPv4 else { return false }
        return address.network(ipv4: prefixLength, ipv6: prefixLength) == network
    }

    /// `10.0.0.0/8`.
    public var description: String { "\(network)/\(prefixLength)" }

    /// Text that is not an address range.
    public struct InvalidAddressRange: Error, CustomStringConvertible {
        /// What was given.
        public let text: String
        public var description: String {
            "\"\(text.prefix(64))\" is not an address range: write ADDRESS or ADDRESS/PREFIX, e.g. 127.0.0.1, 10.0.0.0/8 or fd00::/8"
        }
    }
}
