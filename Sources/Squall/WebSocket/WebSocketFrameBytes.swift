// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SquallCore

/// Server-to-client WebSocket frames (RFC 6455 §5.2) as the bytes that go on the wire: one
/// final, unmasked frame in one buffer, header and payload together, so that a frame shared by
/// many connections is written to each socket as it is — never re-framed, never copied.
///
/// The only extension Squall negotiates is permessage-deflate, whose compressed messages set
/// RSV1; the other RSV bits are always clear.
enum WebSocketFrameBytes {
    /// The opcodes RFC 6455 defines (§5.2), in both directions.
    enum Opcode: UInt8 {
        case continuation = 0x0
        case text = 0x1
        case binary = 0x2
        case close = 0x8
        case ping = 0x9
        case pong = 0xA
    }

    /// A final frame carrying `payload`; `compressed` marks a permessage-deflate message (RSV1).
    static func frame(_ opcode: Opcode, _ payload: ByteBuffer, compressed: Bool = false) -> ByteBuffer {
        let length = payload.readableBytes
        var buffer = ByteBufferAllocator().buffer(capacity: length + 10)
        buffer.writeInteger(0x80 | (compressed ? 0x40 : 0) | opcode.rawValue)
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
        frame(Opcode(payload.kind), payload.bytes)
    }

    /// A text or binary frame, its payload compressed with `window` unless that would not make
    /// it smaller (or `window` does not compress).
    static func deflatedFrame(_ opcode: Opcode, _ payload: ByteBuffer, window: DeflateWindow) -> ByteBuffer {
        if let compressed = PerMessageDeflate.compress(payload, window: window) {
            frame(opcode, compressed, compressed: true)
        } else {
            frame(opcode, payload)
        }
    }

    /// A close frame with `disconnect`'s code and as much of its reason as fits (123 bytes).
    static func close(_ disconnect: Disconnect) -> ByteBuffer {
        var body = ByteBuffer()
        body.writeInteger(disconnect.code)
        body.writeString(disconnect.reason.truncatedUTF8(maxBytes: 123))
        return frame(.close, body)
    }
}

extension WebSocketFrameBytes.Opcode {
    init(_ kind: Payload.Kind) {
        self = kind == .text ? .text : .binary
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
