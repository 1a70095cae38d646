import Foundation

/// One subscriber of a channel, as presence lists it.
public struct PresenceMember: Sendable, Hashable, Codable {
    /// The subscriber's connection id (UUID v4).
    public let id: UUID
    /// What the client said about itself when it subscribed (e.g. `{"name": "alice"}`).
    public let info: JSONValue?
    /// How it is connected: `ws`, `msg`, `sse`.
    public let transport: String

    /// A member.
    public init(id: UUID, info: JSONValue?, transport: String) {
        self.id = id
        self.info = info
        self.transport = transport
    }
}

/// A subscriber joined or left a channel. Presence events are not logged: they reach the
/// subscribers that asked for them at that moment, and are never replayed.
public enum PresenceEvent: Sendable, Hashable {
    /// `member` subscribed to `channel`.
    case join(ChannelName, PresenceMember)
    /// `member` unsubscribed from `channel` or disconnected.
    case leave(ChannelName, PresenceMember)
}
