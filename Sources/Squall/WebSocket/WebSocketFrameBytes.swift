import NIOCore
import SquallCore

/// Server-to-client WebSocket frames (RFC 6455 §5.2) as the bytes that go on the wire: one
/// final, unmasked frame in one buffer, header and payload together, so that a frame shared by
/// many connections is written to each socket as it is — never re-framed, never copied.
///
/// Squall does not negotiate extensions, so the RSV bits are always clear.
enum WebSocketFrameBytes {
    /// The frame's opcode (RFC 6455 §5.2).
    enum Opcode: UInt8 {
        case text = 0x1
        case binary = 0x2
        case close = 0x8
        case ping = 0x9
        case pong = 0xA
    }

    /// A final frame carrying `payload`.
    static func frame(_ opcode: Opcode, _ payload: ByteBuffer) -> ByteBuffer {
        let length = payload.readableBytes
        var buffer = ByteBufferAllocator().buffer(capacity: length + 10)
        buffer.writeInteger(0x80 | opcode.rawValue)
        switch length {
        case ..<126:
            buffer.writeInteger(UInt8(length))
        case ...Int(UInt16.max):
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(length))
        default:
            buffer.writeInteger(UInt8(127))
            buffer.writeInteger(UInt64(length))
        }
        buffer.writeImmutableBuffer(payload)
        return buffer
    }

    /// A text or binary frame, as the payload's kind says.
    static func frame(_ payload: Payload) -> ByteBuffer {
        frame(payload.kind == .text ? .text : .binary, payload.bytes)
    }

    /// A close frame with `disconnect`'s code and as much of its reason as fits (123 bytes).
    static func close(_ disconnect: Disconnect) -> ByteBuffer {
        var body = ByteBuffer()
        body.writeInteger(disconnect.code)
        body.writeString(disconnect.reason.truncatedUTF8(maxBytes: 123))
        return frame(.close, body)
    }
}

/// A message as the bare WebSocket frame it was published as (text or binary): what plain
/// `/msg` sockets receive. Encoded once per message and shared by every such subscriber.
enum PlainFrame: WireFormat {
    static func encode(_ message: Message) -> ByteBuffer {
        WebSocketFrameBytes.frame(message.payload)
    }
}

/// A message as a text frame holding its JSON envelope: what `/ws` subscribers receive.
enum EnvelopeFrame: WireFormat {
    static func encode(_ message: Message) -> ByteBuffer {
        WebSocketFrameBytes.frame(.text, message.encoded(JSONEnvelope.self))
    }
}

extension String {
    /// The longest prefix of whole characters that fits in `maxBytes` of UTF-8.
    func truncatedUTF8(maxBytes: Int) -> String {
        guard utf8.count > maxBytes else { return self }
        var result = ""
        for character in self {
            guard result.utf8.count + character.utf8.count <= maxBytes else { break }
            result.append(character)
        }
        return result
    }
}
