// SPDX-License-Identifier: Apache-2.0

import NIOCore

/// A JSON value kept exactly as its author wrote it: client-supplied presence `info` and request
/// `ref`s, which Squall stores and echoes but never interprets.
///
/// Kept as bytes rather than as a tree: it costs about its own size in memory (a buffer rounds up
/// to a power of two; a decoded tree costs many times as much), it is echoed byte for byte (a
/// number like `9007199254740993` stays exact), and writing it into a reply is a copy that cannot
/// fail. A class, so that a subscriber without `info` — nearly all — pays one null pointer for it.
public final class RawJSON: Sendable, Hashable, CustomStringConvertible {
    /// How big and how deep a client's value may be.
    public struct Limits: Sendable, Hashable {
        /// Most bytes. Default 4 KiB for `info`.
        public var maxBytes: Int
        /// Deepest nesting of arrays and objects; a scalar is 0 deep. Default 8.
        public var maxDepth: Int

        /// Limits; every argument has the default documented on its property.
        public init(maxBytes: Int = 4096, maxDepth: Int = 8) {
            self.maxBytes = maxBytes
            self.maxDepth = maxDepth
        }
    }

    /// Why a value was refused.
    public enum Failure: Error, Hashable, Sendable {
        /// Not JSON.
        case invalid
        /// Longer than the limit.
        case tooLarge(limit: Int)
        /// Nested deeper than the limit.
        case tooDeep(limit: Int)
    }

    /// The value's JSON text, valid UTF-8.
    public let bytes: ByteBuffer

    private init(trusted bytes: ByteBuffer) {
        self.bytes = bytes
    }

    /// Validates `bytes` as one JSON value within `limits`.
    public convenience init(validating bytes: ByteBuffer, limits: Limits) throws(Failure) {
        guard bytes.readableBytes <= limits.maxBytes else { throw .tooLarge(limit: limits.maxBytes) }
        let result: Result<JSONScanner.Kind, JSONScanner.Failure> = bytes.withUnsafeReadableBytes { raw in
            Result { () throws(JSONScanner.Failure) in try JSONScanner.validate(raw, maxDepth: limits.maxDepth) }
        }
        switch result {
        case .success:
            // A copy of its own: a slice would keep the whole request it came in alive.
            var copy = ByteBufferAllocator().buffer(capacity: bytes.readableBytes)
            copy.writeImmutableBuffer(bytes)
            self.init(trusted: copy)
        case .failure(.tooDeep): throw .tooDeep(limit: limits.maxDepth)
        case .failure(.syntax): throw .invalid
        }
    }

    /// `{"name":"…"}`: the presence info of a client that gave only a name.
    public static func name(_ name: String) -> RawJSON {
        var buffer = ByteBuffer()
        buffer.writeStaticString(#"{"name":"#)
        JSONText.writeString(name, into: &buffer)
        buffer.writeStaticString("}")
        return RawJSON(trusted: buffer)
    }

    /// The JSON text.
    public var description: String { String(buffer: bytes) }

    /// Values are equal when their texts are, byte for byte.
    public static func == (lhs: RawJSON, rhs: RawJSON) -> Bool { lhs.bytes == rhs.bytes }

    /// Hashes the text.
    public func hash(into hasher: inout Hasher) { hasher.combine(bytes) }
}
