// SPDX-License-Identifier: Apache-2.0

import Foundation

/// A message before a ``SharedLog`` gives it a position.
public struct Draft: Sendable {
    /// The channel it goes to.
    public let channel: ChannelName
    /// Its id (UUID v4).
    public let id: UUID
    /// When it was published.
    public let time: Date
    /// The connection that published it, if any.
    public let publisher: UUID?
    /// What was published.
    public let payload: Payload

    /// A draft.
    public init(channel: ChannelName, id: UUID = .random(), time: Date, publisher: UUID?, payload: Payload) {
        self.channel = channel
        self.id = id
        self.time = time
        self.publisher = publisher
        self.payload = payload
    }

    /// The message it became at `position`; `id` and `time` are the draft's unless given (an
    /// idempotency key answers with the first message's).
    public func message(at position: StreamPosition, id: UUID? = nil, time: Date? = nil) -> Message {
        Message(channel: channel, position: position, id: id ?? self.id, time: time ?? self.time, publisher: publisher, payload: payload)
    }
}
