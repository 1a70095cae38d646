// SPDX-License-Identifier: Apache-2.0

import NIOCore
import Synchronization

/// A way of putting a ``PresenceChange`` on the wire. Encoding must be a pure function of the
/// change: its result is cached and shared by every watcher.
public protocol PresenceWireFormat {
    /// The change's bytes in this format.
    static func encode(_ change: PresenceChange) -> ByteBuffer
}

/// A presence change as it reaches a channel's watchers: one object for all of them, which
/// encodes the change once per ``PresenceWireFormat`` and hands every later caller the same
/// bytes, as ``Message`` does for messages.
public final class PresenceEvent: Sendable {
    /// What changed.
    public let change: PresenceChange
    private let encodings = Mutex<[ObjectIdentifier: ByteBuffer]>([:])

    /// An event for `change`.
    public init(_ change: PresenceChange) {
        self.change = change
    }

    /// The change in `format`, encoded on first use and shared afterwards.
    public func encoded<Format: PresenceWireFormat>(_ format: Format.Type) -> ByteBuffer {
        let key = ObjectIdentifier(format)
        if let cached = encodings.withLock({ $0[key] }) { return cached }
        let bytes = Format.encode(change)
        return encodings.withLock { cache in
            if let cached = cache[key] { return cached }
            cache[key] = bytes
            return bytes
        }
    }
}
