// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SquallCore

/// A message as one WebSocket data frame: the wire formats of broadcasts, each encoded once per
/// message and shared by every subscriber of that format.
protocol FrameFormat: WireFormat {
    /// The frame's opcode and (uncompressed) payload for `message`.
    static func content(of message: Message) -> (opcode: WebSocketFrameBytes.Opcode, payload: ByteBuffer)
}

extension FrameFormat {
    static func encode(_ message: Message) -> ByteBuffer {
        let content = content(of: message)
        return WebSocketFrameBytes.frame(content.opcode, content.payload)
    }
}

/// A message as the bare WebSocket frame it was published as (text or binary): what plain
/// `/msg` sockets receive.
enum PlainFrame: FrameFormat {
    static func content(of message: Message) -> (opcode: WebSocketFrameBytes.Opcode, payload: ByteBuffer) {
        (WebSocketFrameBytes.Opcode(message.payload.kind), message.payload.bytes)
    }
}

/// A message as a text frame holding its JSON envelope: what `/ws` subscribers receive.
enum EnvelopeFrame: FrameFormat {
    static func content(of message: Message) -> (opcode: WebSocketFrameBytes.Opcode, payload: ByteBuffer) {
        (.text, message.encoded(JSONEnvelope.self))
    }
}
