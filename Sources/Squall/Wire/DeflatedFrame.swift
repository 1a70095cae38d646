// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SquallCore

/// `Base`'s frame with its payload compressed with `Window` for clients that negotiated
/// permessage-deflate with that window: compressed once per message and window, like every wire
/// format, and shared by all of them. (A type per window, because a message keeps its
/// encodings by type.)
enum DeflatedFrame<Base: FrameFormat, Window: DeflateWindowType>: WireFormat {
    static func encode(_ message: Message) -> ByteBuffer {
        let content = Base.content(of: message)
        return WebSocketFrameBytes.deflatedFrame(content.opcode, content.payload, window: Window.window)
    }
}

/// A ``DeflateWindow`` as a type, to key a message's compressed copies.
protocol DeflateWindowType {
    static var window: DeflateWindow { get }
}

enum Window9: DeflateWindowType { static let window = DeflateWindow.bits9 }
enum Window10: DeflateWindowType { static let window = DeflateWindow.bits10 }
enum Window11: DeflateWindowType { static let window = DeflateWindow.bits11 }
enum Window12: DeflateWindowType { static let window = DeflateWindow.bits12 }
enum Window13: DeflateWindowType { static let window = DeflateWindow.bits13 }
enum Window14: DeflateWindowType { static let window = DeflateWindow.bits14 }
enum Window15: DeflateWindowType { static let window = DeflateWindow.bits15 }

extension Message {
    /// This message as `format`'s frame for a client that compresses with `window`: shared by
    /// every such client. On an 8-bit window, which zlib cannot compress with, the plain frame.
    func deflatedFrame<Format: FrameFormat>(_ format: Format.Type, window: DeflateWindow) -> ByteBuffer {
        switch window {
        case .bits8: encoded(Format.self)
        case .bits9: encoded(DeflatedFrame<Format, Window9>.self)
        case .bits10: encoded(DeflatedFrame<Format, Window10>.self)
        case .bits11: encoded(DeflatedFrame<Format, Window11>.self)
        case .bits12: encoded(DeflatedFrame<Format, Window12>.self)
        case .bits13: encoded(DeflatedFrame<Format, Window13>.self)
        case .bits14: encoded(DeflatedFrame<Format, Window14>.self)
        case .bits15: encoded(DeflatedFrame<Format, Window15>.self)
        }
    }
}
