import Foundation
import NIOCore
import SquallCore

/// A message as JSON, the one envelope every transport but the plain sockets uses:
///
/// ```json
/// {"channel":"room","data":"hi","epoch":"k3x9q2ab","id":"…","offset":41,"publisher":"…","time":1764188000123,"type":"message"}
/// ```
///
/// Binary payloads travel base64-encoded, marked `"encoding":"base64"`. `time` is Unix time in
/// milliseconds; `publisher` is absent for messages published over HTTP.
enum JSONEnvelope: WireFormat {
    struct Body: Encodable {
        var type = "message"
        let channel: String
        let id: UUID
        let epoch: String
        let offset: UInt64
        let time: Int64
        let publisher: UUID?
        let data: String
        let encoding: String?
    }

    static func body(_ message: Message) -> Body {
        let payload = message.payload
        let isText = payload.kind == .text
        return Body(
            channel: message.channel.rawValue,
            id: message.id,
            epoch: message.position.epoch,
            offset: message.offset,
            time: message.unixMilliseconds,
            publisher: message.publisher,
            data: isText ? String(buffer: payload.bytes) : Data(payload.bytes.readableBytesView).base64EncodedString(),
            encoding: isText ? nil : "base64"
        )
    }

    static func encode(_ message: Message) -> ByteBuffer {
        JSONWire.encode(body(message))
    }
}

extension Message {
    /// When the message was appended, as Unix time in milliseconds: the `time` of every JSON
    /// Squall writes.
    var unixMilliseconds: Int64 { Int64((time.timeIntervalSince1970 * 1000).rounded()) }
}

/// A message as a Server-Sent Event: `id` is its position, so that a browser's automatic
/// reconnect (`Last-Event-ID`) resumes right after it.
enum SSEMessageEvent: WireFormat {
    static func encode(_ message: Message) -> ByteBuffer {
        SSE.event("message", id: message.position.description, data: message.encoded(JSONEnvelope.self))
    }
}

/// The text/event-stream framing.
enum SSE {
    /// `id:`, `event:` and `data:` lines and the blank line that ends an event. `data` must hold
    /// no newline (compact JSON never does).
    static func event(_ name: String, id: String? = nil, data: ByteBuffer) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(data.readableBytes + 64)
        if let id { buffer.writeString("id: \(id)\n") }
        buffer.writeString("event: \(name)\ndata: ")
        buffer.writeImmutableBuffer(data)
        buffer.writeString("\n\n")
        return buffer
    }

    /// A comment line: ignored by clients, it keeps proxies and the TCP connection busy.
    static let heartbeat = ByteBuffer(string: ": heartbeat\n\n")
}

/// JSON as Squall writes it: compact, keys sorted (stable output), slashes unescaped.
enum JSONWire {
    static func encode(_ value: some Encodable) -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Squall's own reply types cannot fail to encode.
        return ByteBuffer(bytes: try! encoder.encode(value))
    }
}
