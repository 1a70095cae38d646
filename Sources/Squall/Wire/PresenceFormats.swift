// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SquallCore

/// A presence event as a `/ws` text frame — its JSON, `{"channel","client","type"}` — framed
/// once for every watcher (never compressed: compressing is per client window, and presence
/// events are small).
enum PresenceFrame: PresenceWireFormat {
    static func encode(_ change: PresenceChange) -> ByteBuffer {
        WebSocketFrameBytes.frame(.text, ProtocolReply.presenceChange(change).json)
    }
}

/// A presence event as a Server-Sent Event named `join` or `leave`.
enum SSEPresenceEvent: PresenceWireFormat {
    static func encode(_ change: PresenceChange) -> ByteBuffer {
        let (type, json) = ProtocolReply.presenceChange(change)
        return SSE.event(type, data: json)
    }
}
