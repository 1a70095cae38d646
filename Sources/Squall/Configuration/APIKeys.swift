// SPDX-License-Identifier: Apache-2.0

/// The keys that open the server API (`/api/…`): several at once, so that one can be rotated
/// out while backends move to the next. None: the API is off (404 `api_disabled`).
///
/// Contracts: a key is compared in time that depends only on its length, never on how much of
/// it matched, so answers do not leak a key byte by byte; keys are never logged.
public struct APIKeys: Sendable, Hashable, CustomStringConvertible {
    private let keys: [[UInt8]]

    /// The keys `keys`; empty ones are ignored.
    public init(_ keys: [String] = []) {
        self.keys = keys.filter { !$0.isEmpty }.map { Array($0.utf8) }
    }

    /// The first key, for a client of the API on this machine (`squall api`).
    public var first: String? { keys.first.map { String(decoding: $0, as: UTF8.self) } }

    /// Whether the API is on.
    public var isEmpty: Bool { keys.isEmpty }

    /// Whether `candidate` is one of the keys.
    public func admits(_ candidate: Substring) -> Bool {
        let bytes = Array(candidate.utf8)
        var found = false
        for key in keys where key.count == bytes.count {
            var difference: UInt8 = 0
            for index in key.indices { difference |= key[index] ^ bytes[index] }
            found = found || difference == 0
        }
        return found
    }

    /// How many keys there are, never the keys.
    public var description: String { "\(keys.count) API key(s)" }
}
