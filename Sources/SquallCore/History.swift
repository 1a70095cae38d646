// SPDX-License-Identifier: Apache-2.0

/// A slice of a channel's log, as history and polls return it.
public struct History: Sendable {
    /// The channel.
    public let channel: ChannelName
    /// Messages, oldest first.
    public let messages: [Message]
    /// Where to continue from: the last message returned, or the channel's current position
    /// when none was.
    public let position: StreamPosition
    /// `false` when the requested position could not be resumed (another epoch, or older than
    /// retention): `messages` is then empty and `position` is the channel's current one.
    public let recovered: Bool
}
