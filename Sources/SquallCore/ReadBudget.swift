// SPDX-License-Identifier: Apache-2.0

/// How much one read of a log may return: messages are taken while their cost, summed, stays
/// within `maxBytes` — and always at least one, so that no message is out of reach.
public struct ReadBudget: Sendable {
    /// Most bytes, as `cost` counts them.
    public var maxBytes: Int
    /// What one message costs the reply (its encoded size, or an estimate).
    public var cost: @Sendable (Message) -> Int

    /// A budget of `maxBytes` as `cost` counts.
    public init(maxBytes: Int, cost: @escaping @Sendable (Message) -> Int) {
        self.maxBytes = maxBytes
        self.cost = cost
    }

    /// No bound.
    public static let unlimited = ReadBudget(maxBytes: .max) { _ in 0 }
}
