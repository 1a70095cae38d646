// SPDX-License-Identifier: Apache-2.0

/// A channel's log as a store gives it back.
public struct StoredLog: Sendable {
    /// The epoch the channel's positions are in.
    public let epoch: String
    /// The offset of the last message committed in that epoch (0 if none).
    public let lastOffset: UInt64
    /// The newest committed messages of that epoch, oldest first.
    public let messages: [Message]
    /// The idempotency keys of those of `messages` published with one, by offset.
    public let idempotencyKeys: [UInt64: IdempotencyKey]
    /// The epoch began at the channel's first message, when the store held nothing for it, and
    /// not because an earlier epoch ended (a lost commit): a position given out while the
    /// channel was unpublished continues into it.
    public let isFirst: Bool

    /// A stored log; `messages` oldest first, all of `epoch`, the last at `lastOffset` or before.
    public init(epoch: String, lastOffset: UInt64, messages: [Message], idempotencyKeys: [UInt64: IdempotencyKey] = [:], isFirst: Bool = true) {
        self.epoch = epoch
        self.lastOffset = lastOffset
        self.messages = messages
        self.idempotencyKeys = idempotencyKeys
        self.isFirst = isFirst
    }
}
