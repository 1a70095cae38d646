import Foundation
import NIOCore
import Synchronization

/// One published message, as its channel's log keeps it. Immutable once appended.
///
/// A message is a shared reference: the log, every subscriber's outbox and every history reply
/// hold the same object. Transports serialize it through ``encoded(_:)``, which encodes once per
/// ``WireFormat`` and hands every later caller the same bytes — a broadcast to N subscribers of
/// one transport costs one encoding, not N.
public final class Message: Sendable {
    /// The channel it was published to.
    public let channel: ChannelName
    /// Where it sits in the channel's log.
    public let position: StreamPosition
    /// A random (version 4) UUID.
    public let id: UUID
    /// When the log appended it.
    public let time: Date
    /// The connection that published it, if it came over a connection.
    public let publisher: UUID?
    /// What was published.
    public let payload: Payload
    private let encodings = Mutex<[ObjectIdentifier: ByteBuffer]>([:])

    /// A message as a log appends it.
    public init(channel: ChannelName, position: StreamPosition, id: UUID = .random(), time: Date, publisher: UUID?, payload: Payload) {
        self.channel = channel
        self.position = position
        self.id = id
        self.time = time
        self.publisher = publisher
        self.payload = payload
    }

    /// The message's offset in its channel.
    public var offset: UInt64 { position.offset }

    /// The message in `format`, encoded on first use and shared afterwards.
    public func encoded<Format: WireFormat>(_ format: Format.Type) -> ByteBuffer {
        let key = ObjectIdentifier(format)
        if let cached = encodings.withLock({ $0[key] }) { return cached }
        let bytes = Format.encode(self)
        encodings.withLock { $0[key] = bytes }
        return bytes
    }
}

/// A way of putting a ``Message`` on the wire (a JSON envelope, an SSE event, …).
/// Encoding must be a pure function of the message: its result is cached and shared.
public protocol WireFormat {
    /// The message's bytes in this format.
    static func encode(_ message: Message) -> ByteBuffer
}
