// SPDX-License-Identifier: Apache-2.0

/// The validated name of a channel: 1 to 128 characters from `A–Z a–z 0–9 _ - . : @`.
///
/// The set is small on purpose: a name travels unescaped in URL paths (`/channels/{name}/…`),
/// in SSE ids and in logs, so it can never need quoting or smuggle a `/` or a newline.
public struct ChannelName: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Longest name accepted.
    public static let maxLength = 128

    /// The name.
    public let rawValue: String

    /// Validates `rawValue`.
    public init(_ rawValue: String) throws(ChannelNameError) {
        guard !rawValue.isEmpty else { throw .empty }
        guard rawValue.utf8.count <= Self.maxLength else { throw .tooLong(rawValue.utf8.count) }
        guard rawValue.utf8.allSatisfy(Self.isAllowed) else { throw .invalidCharacters(rawValue) }
        self.rawValue = rawValue
    }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "@"):
            true
        default:
            false
        }
    }

    /// The name.
    public var description: String { rawValue }

    /// Orders by name.
    public static func < (lhs: ChannelName, rhs: ChannelName) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Why a channel name was refused.
public enum ChannelNameError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The name is empty.
    case empty
    /// The name has this many bytes, more than ``ChannelName/maxLength``.
    case tooLong(Int)
    /// The name holds a character outside `A–Z a–z 0–9 _ - . : @`.
    case invalidCharacters(String)

    /// A sentence for error responses.
    public var description: String {
        switch self {
        case .empty: "channel name is empty"
        case .tooLong(let count): "channel name is \(count) bytes long; at most \(ChannelName.maxLength) are allowed"
        case .invalidCharacters: "channel name may only hold letters, digits and _ - . : @"
        }
    }
}
