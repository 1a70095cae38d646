// SPDX-License-Identifier: Apache-2.0

import NIOCore

/// A way of putting a ``Message`` on the wire (a JSON envelope, an SSE event, …).
/// Encoding must be a pure function of the message: its result is cached and shared.
public protocol WireFormat {
    /// The message's bytes in this format.
    static func encode(_ message: Message) -> ByteBuffer
}
