// SPDX-License-Identifier: Apache-2.0

import NIOCore

/// The body of one message: text (valid UTF-8) or binary, kept as bytes.
///
/// A payload is immutable and its `ByteBuffer` is copy-on-write, so the same bytes are shared by
/// every outbox a broadcast reaches: fan-out to N connections never copies the body N times.
public struct Payload: Sendable, Hashable {
    /// Whether the bytes are text or opaque binary data.
    public enum Kind: Sendable, Hashable {
        /// UTF-8 text: a WebSocket text frame, a JSON string.
        case text
        /// Opaque bytes: a WebSocket binary frame.
        case binary
    }

    /// Text or binary.
    public let kind: Kind
    /// The body; for `.text` it holds valid UTF-8.
    public let bytes: ByteBuffer

    private init(kind: Kind, bytes: ByteBuffer) {
        self.kind = kind
        self.bytes = bytes
    }

    /// A text payload. Swift strings are always valid Unicode, so the bytes are valid UTF-8.
    public static func text(_ string: String) -> Payload {
        Payload(kind: .text, bytes: ByteBuffer(string: string))
    }

    /// A text payload sharing `bytes` (no copy), which the caller guarantees are valid UTF-8
    /// (text that came out of an encoder, or was validated on arrival).
    public static func text(utf8 bytes: ByteBuffer) -> Payload {
        Payload(kind: .text, bytes: bytes)
    }

    /// A binary payload sharing `bytes` (no copy).
    public static func binary(_ bytes: ByteBuffer) -> Payload {
        Payload(kind: .binary, bytes: bytes)
    }

    /// A binary payload holding a copy of `bytes`.
    public static func binary(_ bytes: some Sequence<UInt8>) -> Payload {
        Payload(kind: .binary, bytes: ByteBuffer(bytes: bytes))
    }

    /// The text, for a text payload; `nil` for binary.
    public var text: String? {
        kind == .text ? String(buffer: bytes) : nil
    }

    /// Size of the body in bytes.
    public var count: Int { bytes.readableBytes }
}
