// SPDX-License-Identifier: Apache-2.0

/// What a client learns when it subscribes.
public struct Subscription: Sendable, Hashable {
    /// The channel.
    public let channel: ChannelName
    /// The channel's position at the moment of subscribing: the replay ends here and live
    /// messages continue from here.
    public let position: StreamPosition
    /// `true` if the client asked to resume and every message after its position is being
    /// replayed; `false` if it asked and its position could not be resumed (another epoch, or
    /// older than retention): it gets live messages only and should reload. `nil` if it did
    /// not ask.
    public let recovered: Bool?
    /// How many messages are replayed after the subscription.
    public let replayed: Int
}
