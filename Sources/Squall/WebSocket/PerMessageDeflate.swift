// SPDX-License-Identifier: Apache-2.0

import CompressNIO
import Foundation
import NIOCore
import Synchronization

/// permessage-deflate (RFC 7692) as Squall speaks it: the negotiation, and the compression of
/// one message at a time.
///
/// Squall accepts an offer on these terms, and says so in its answer:
/// `permessage-deflate; server_no_context_takeover; client_no_context_takeover`, with
/// `server_max_window_bits=N` when the offer named the server's window (RFC 7692 §7.1.2.1: a
/// server accepts that parameter by answering it).
/// - **No context takeover, either way.** Every message is compressed on its own. That is what
///   lets a broadcast be compressed once and the very same bytes go to every subscriber, and it
///   means a connection holds no zlib state: an idle connection with compression costs what one
///   without does, and the zlib streams live in a small pool used one message at a time. The
///   price is a lower ratio on a stream of small, similar messages (there is no shared window);
///   messages below ``DeflateOptions/minimumSize`` are not compressed at all.
/// - **The window the client asks for.** Squall compresses with a 32 KiB window (15 bits), or
///   the smaller one an offer's `server_max_window_bits` (8–15) names (``DeflateWindow``); one
///   compressed copy is made per message per window in use. The client's own window
///   (`client_max_window_bits`) may be anything, since Squall inflates with the largest.
/// - An offer with an unknown, repeated or malformed parameter is declined (RFC 7692 §5).
enum PerMessageDeflate {
    /// The extension's token.
    static let name = "permessage-deflate"
    /// The terms of every answer Squall gives.
    private static let terms = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

    /// An offer Squall accepted.
    struct Agreement: Equatable {
        /// The window Squall compresses with.
        let window: DeflateWindow
        /// Whether the offer named the server's window, which the answer must then name too.
        let namesWindow: Bool

        /// The `Sec-WebSocket-Extensions` answer: Squall's terms, and the window if named.
        var response: String {
            namesWindow ? "\(terms); server_max_window_bits=\(window.rawValue)" : terms
        }
    }

    /// The first of `offers` — the values of the request's `Sec-WebSocket-Extensions` fields,
    /// each a comma-separated list — that is a permessage-deflate offer Squall can accept.
    static func negotiate(_ offers: [String]) -> Agreement? {
        for offer in offers.lazy.flatMap(ExtensionOffer.parse) where offer.name == name {
            if let agreement = accepted(offer.parameters) { return agreement }
        }
        return nil
    }

    /// Whether one of `offers` is an offer Squall can accept (see ``negotiate(_:)``).
    static func accepts(_ offers: [String]) -> Bool {
        negotiate(offers) != nil
    }

    private static func accepted(_ parameters: [(name: String, value: String?)]) -> Agreement? {
        var seen = Set<String>()
        var window = DeflateWindow.bits15
        for (parameter, value) in parameters {
            guard seen.insert(parameter).inserted else { return nil }
            switch parameter {
            case "server_no_context_takeover", "client_no_context_takeover":
                guard value == nil else { return nil }
            case "server_max_window_bits":
                guard let bits = value.flatMap(windowBits) else { return nil }
                window = bits
            case "client_max_window_bits":
                // Without a value the client only says it understands the parameter.
                guard value.map({ windowBits($0) != nil }) ?? true else { return nil }
            default:
                return nil
            }
        }
        return Agreement(window: window, namesWindow: seen.contains("server_max_window_bits"))
    }

    /// A decimal 8–15 without sign or leading zero (RFC 7692 §7.1.2.1: `1*DIGIT`, 8 to 15).
    private static func windowBits(_ value: String) -> DeflateWindow? {
        guard value.utf8.count <= 2, value.first != "0", value.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        return UInt8(value).flatMap(DeflateWindow.init(rawValue:))
    }

    /// `payload` compressed as one permessage-deflate message (RFC 7692 §7.2.1: a raw DEFLATE
    /// stream, sync-flushed, without its final `00 00 FF FF`) with `window`, or `nil` when that
    /// would not be smaller or `window` does not compress — the message is then sent as it is,
    /// which the extension allows.
    static func compress(_ payload: ByteBuffer, window: DeflateWindow = .bits15) -> ByteBuffer? {
        guard payload.readableBytes > 0, window.compresses else { return nil }
        return deflaters[Int(window.rawValue) - 9].borrow { deflater in
            var input = payload
            var output = ByteBufferAllocator().buffer(capacity: deflater.maxSize(from: input))
            defer { try? deflater.reset() }
            // The buffer holds deflateBound plus the flush marker, so one sync flush finishes.
            guard (try? deflater.deflate(from: &input, to: &output, flush: .sync)) != nil,
                input.readableBytes == 0, output.readableBytes >= 4
            else { return nil }
            output.moveWriterIndex(to: output.writerIndex - 4)
            return output.readableBytes < payload.readableBytes ? output : nil
        }
    }

    /// Why a compressed message could not be inflated.
    enum InflateError: Error {
        /// It inflates to more than the limit (1009).
        case tooBig
        /// It is not valid DEFLATE data, or refers to an earlier message (1007).
        case corrupt
        /// zlib could not set up a stream: out of memory (1011).
        case unavailable
    }

    /// The message `compressed` holds, if it inflates to at most `limit` bytes.
    ///
    /// Contract: the output buffer grows to at most `limit + 1` bytes asked for, which NIO
    /// rounds up to a power of two; what inflates past `limit` within that rounding is refused
    /// all the same.
    static func inflate(_ compressed: ByteBuffer, limit: Int) throws(InflateError) -> ByteBuffer {
        var input = compressed
        input.writeBytes([0x00, 0x00, 0xFF, 0xFF])
        let inflated = try inflaters.borrow { inflater throws(InflateError) -> ByteBuffer in
            defer { try? inflater.reset() }
            var output = ByteBufferAllocator().buffer(capacity: min(max(input.readableBytes * 4, 1024), limit + 1))
            while true {
                do {
                    try inflater.inflate(from: &input, to: &output)
                    return output
                } catch let error as CompressNIOError where error == .bufferOverflow {
                    // Out of room: grow up to one byte past the limit, which proves it too big.
                    guard output.readableBytes <= limit else { throw .tooBig }
                    let room = min(output.capacity, limit + 1 - output.readableBytes)
                    output.reserveCapacity(minimumWritableBytes: max(room, 1))
                } catch let error as CompressNIOError where error == .inputBufferOverflow {
                    return output  // every byte was taken: the message is complete
                } catch {
                    throw .corrupt
                }
            }
        }
        guard let inflated else { throw .unavailable }
        guard inflated.readableBytes <= limit else { throw .tooBig }
        return inflated
    }

    /// One pool per window that compresses, 9 to 15 bits; a pool holds no stream until used.
    ///
    /// Level 1, zlib's fastest, as gorilla/websocket's default: a server compresses every
    /// message of every channel that has a deflate client, and level 1 costs a fraction of the
    /// default level's CPU for a few points of ratio (docs/benchmarks.md, "Figures behind
    /// design choices"). Any level inflates the same.
    private static let deflaters = (Int32(9)...15).map { bits in
        ZlibPool { try ZlibCompressor(algorithm: .deflate, configuration: ZlibConfiguration(windowSize: bits, compressionLevel: 1)) }
    }
    private static let inflaters = ZlibPool { try ZlibDecompressor(algorithm: .deflate, windowSize: 15) }
}

/// zlib streams kept for reuse: setting one up costs more than compressing a small message, and
/// a stream takes up to ~256 KiB. A stream is out of the pool while one thread uses it, so it
/// is never shared; at most `capacity` idle streams are kept.
private final class ZlibPool<Stream: AnyObject>: @unchecked Sendable {
    private let make: () throws -> Stream
    private let idle = Mutex<[UnsafeTransfer]>([])
    private let capacity = 16

    /// Moves a stream, used by one thread at a time, in and out of the lock.
    private struct UnsafeTransfer: @unchecked Sendable {
        let stream: Stream
    }

    init(make: @escaping () throws -> Stream) {
        self.make = make
    }

    /// Runs `body` with a stream of its own; `body` leaves the stream reset.
    func borrow<Result, Failure: Error>(_ body: (Stream) throws(Failure) -> Result?) throws(Failure) -> Result? {
        guard let stream = idle.withLock({ $0.popLast() })?.stream ?? (try? make()) else { return nil }
        defer {
            idle.withLock { idle in
                if idle.count < capacity { idle.append(UnsafeTransfer(stream: stream)) }
            }
        }
        return try body(stream)
    }
}

/// One entry of a `Sec-WebSocket-Extensions` list (RFC 6455 §9.1): a token and its parameters,
/// whose values may be quoted.
struct ExtensionOffer {
    let name: String
    let parameters: [(name: String, value: String?)]

    /// The entries of one header value; an entry that does not parse is left out.
    static func parse(_ header: String) -> [ExtensionOffer] {
        split(header, on: ",").compactMap { entry in
            let parts = split(entry, on: ";").map { $0.trimmingSpaces() }
            guard let name = parts.first, isToken(name) else { return nil }
            var parameters: [(name: String, value: String?)] = []
            for part in parts.dropFirst() {
                // Empty pieces kept: "", "a=" and "=b" are malformed, not parameters.
                let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map { String($0).trimmingSpaces() }
                guard let parameter = pieces.first, isToken(parameter) else { return nil }
                var value = pieces.count == 2 ? pieces[1] : nil
                if let quoted = value, quoted.count >= 2, quoted.hasPrefix("\""), quoted.hasSuffix("\"") {
                    value = String(quoted.dropFirst().dropLast())
                }
                if let value, !isToken(value) { return nil }
                parameters.append((parameter, value))
            }
            return ExtensionOffer(name: name.lowercased(), parameters: parameters)
        }
    }

    /// Splits on `separator` outside double quotes.
    private static func split(_ text: String, on separator: Character) -> [String] {
        var pieces: [String] = []
        var current = ""
        var quoted = false
        for character in text {
            if character == "\"" { quoted.toggle() }
            if character == separator, !quoted {
                pieces.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        pieces.append(current)
        return pieces
    }

    private static func isToken(_ text: String) -> Bool {
        !text.isEmpty
            && text.utf8.allSatisfy { byte in
                byte > 0x20 && byte < 0x7F && !"()<>@,;:\\\"/[]?={}".utf8.contains(byte)
            }
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        trimmingCharacters(in: .whitespaces)
    }
}
