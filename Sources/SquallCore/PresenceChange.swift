// SPDX-License-Identifier: Apache-2.0

/// A subscriber joined or left a channel. Presence changes are not logged: they reach the
/// subscribers that asked for them at that moment (as a ``PresenceEvent``), and are never replayed.
public enum PresenceChange: Sendable, Hashable {
    /// `member` subscribed to `channel`.
    case join(ChannelName, PresenceMember)
    /// `member` unsubscribed from `channel` or disconnected.
    case leave(ChannelName, PresenceMember)

    /// The channel.
    public var channel: ChannelName {
        switch self {
        case .join(let channel, _), .leave(let channel, _): channel
        }
    }

    /// Who joined or left.
    public var member: PresenceMember {
        switch self {
        case .join(_, let member), .leave(_, let member): member
        }
    }
}
