// SPDX-License-Identifier: Apache-2.0

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
    private let encodings = Mutex(Encodings())

    /// The cached wire formats, and the log whose byte bound counts them while it keeps the
    /// message.
    private struct Encodings {
        var cache: [ObjectIdentifier: ByteBuffer] = [:]
        var ledger: RetentionLedger?
        var counted = 0
    }

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

    /// The message in `format`, encoded on first use and shared afterwards. While a log keeps
    /// the message, the copy counts against that log's byte bound.
    public func encoded<Format: WireFormat>(_ format: Format.Type) -> ByteBuffer {
        let key = ObjectIdentifier(format)
        if let cached = encodings.withLock({ $0.cache[key] }) { return cached }
        let bytes = Format.encode(self)
        return encodings.withLock { state in
            // Two threads may have encoded it at once: keep, and count, the first.
            if let cached = state.cache[key] { return cached }
            state.cache[key] = bytes
            state.counted += bytes.readableBytes
            state.ledger?.add(bytes.readableBytes)
            return bytes
        }
    }

    /// The log `ledger` keeps this message: its payload and copies count there from now on.
    func retain(in ledger: RetentionLedger) {
        encodings.withLock { state in
            state.counted += payload.count
            ledger.add(state.counted)
            state.ledger = ledger
        }
    }

    /// The log let the message go: what it counted there is given back. Copies made later (for
    /// a subscriber still sending it) count nowhere: they go with the message.
    func release(from ledger: RetentionLedger) {
        encodings.withLock { state in
            ledger.add(-state.counted)
            state.ledger = nil
        }
    }
}

/// The bytes one channel's log holds on its messages' behalf, updated from any thread as wire
/// formats are encoded.
final class RetentionLedger: Sendable {
    private let total = Atomic<Int>(0)

    var bytes: Int { total.load(ordering: .relaxed) }

    func add(_ bytes: Int) {
        total.add(bytes, ordering: .relaxed)
    }
}
