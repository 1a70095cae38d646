// SPDX-License-Identifier: Apache-2.0

/// What a ``SharedLog`` did with a draft.
public struct Appended: Sendable {
    /// The message at the position it was given; for a key already held, the first one's
    /// position, id and time.
    public let message: Message
    /// `false` when an idempotency key matched an earlier message and nothing was appended: then
    /// ``message`` carries the retry's payload, which may not be the first one's.
    public let isNew: Bool
    /// `true` when an idempotency key matched an earlier message whose payload was not this
    /// one: the key was reused for another publish, which is refused.
    public let isKeyReused: Bool

    /// An outcome.
    public init(message: Message, isNew: Bool, isKeyReused: Bool = false) {
        self.message = message
        self.isNew = isNew
        self.isKeyReused = isKeyReused
    }
}
