// SPDX-License-Identifier: Apache-2.0

import SquallCore
import Synchronization

/// The messages a connection sent while the backend's hooks decided whether to let it in: kept,
/// in order, to be handled once they have, within a bound.
///
/// Contracts: at most ``maxFrames`` messages and ``maxBytes`` bytes are kept (more closes the
/// connection with 1008, ``Disconnect/earlyMessages``); the connection is not read meanwhile,
/// so only what had already arrived is kept.
final class EarlyMessages: Sendable {
    /// What became of a message that came while the hooks decided.
    enum Outcome {
        /// Kept, to be handled once the hooks let the connection in.
        case held
        /// Over what may wait: the connection closes.
        case tooMuch
        /// The hooks have decided (or were never asked): it is handled now.
        case notDeciding
    }

    static let maxFrames = 16
    static let maxBytes = 256 * 1024

    private let kept = Mutex<(messages: [Payload], bytes: Int)?>(nil)

    init() {}

    /// From now on, messages are kept until ``release()``.
    func hold() {
        kept.withLock { $0 = ([], 0) }
    }

    /// Keeps `message` if the hooks are deciding.
    func keep(_ message: Payload) -> Outcome {
        kept.withLock { kept in
            guard var held = kept else { return .notDeciding }
            held.messages.append(message)
            held.bytes += message.bytes.readableBytes
            kept = held
            return held.messages.count > Self.maxFrames || held.bytes > Self.maxBytes ? .tooMuch : .held
        }
    }

    /// The messages kept, in order; later ones are handled at once.
    func release() -> [Payload] {
        kept.withLock { kept in
            defer { kept = nil }
            return kept?.messages ?? []
        }
    }
}
