// SPDX-License-Identifier: Apache-2.0

/// A publisher's name for one publish, so that a retry of it (after a timeout, a lost reply, a
/// reconnect) is recognised instead of appended again: 1 to 255 visible ASCII characters
/// (`!` to `~`), as HTTP's `Idempotency-Key` header and `/ws`'s `idempotency_key` carry it.
///
/// Keys are per channel: the same key on two channels names two publishes.
public struct IdempotencyKey: Hashable, Sendable, CustomStringConvertible {
    /// Longest key accepted, in bytes.
    public static let maxLength = 255
    /// What a key must be, as error messages say it.
    public static let requirement = "1 to \(maxLength) visible ASCII characters"

    /// The key.
    public let rawValue: String

    /// Validates `rawValue`.
    /// - Throws: ``IdempotencyKeyError`` when it is empty, longer than ``maxLength`` or holds a
    ///   character outside `!`…`~`.
    public init(_ rawValue: String) throws(IdempotencyKeyError) {
        guard !rawValue.isEmpty, rawValue.utf8.count <= Self.maxLength, rawValue.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw IdempotencyKeyError()
        }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
}

/// A string that is not an ``IdempotencyKey``.
public struct IdempotencyKeyError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String { "an idempotency key is \(IdempotencyKey.requirement)" }
}
