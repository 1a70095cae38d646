// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SquallCore

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
