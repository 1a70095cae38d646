import Foundation
import NIOCore
import SquallCore
import Synchronization

/// The paths every message takes, as operations a micro-benchmark can repeat: the
/// ordo-one/benchmark suite in `benchmarks/micro` measures each (time, CPU, allocations), so a
/// regression shows in numbers. Not a public API: `@_spi(Benchmarks) import Squall`.
@_spi(Benchmarks)
public enum HotPaths {
    /// One hot path: its name, and how to set it up.
    public struct Path: Sendable {
        /// What one operation does, as the benchmark reports it.
        public let name: String
        /// Builds the path's state (outside any measurement) and returns one operation.
        public let prepare: @Sendable () -> @Sendable () -> Void
    }

    /// Every hot path: a connection's upgrade, then in the order a message meets them.
    public static let all: [Path] = [
        Path(name: "WebSocket upgrade: read a browser's request head, compute the accept value") {
            let head = ByteBuffer(string: browserUpgrade)
            return {
                let read = WebSocketHandshake.read(head)
                guard case .upgrade(let request) = read else { preconditionFailure("not an upgrade") }  // trap-ok: benchmark input, fixed
                _ = WebSocketAccept.value(forKey: request.key.utf8)
            }
        },
        Path(name: "Log append (publish, no subscribers)") {
            let hub = Hub()
            return { hub.publish(smallPayload, to: channel) { _ in } }
        },
        Path(name: "JSON envelope encoding") {
            let message = Message(channel: channel, position: StreamPosition(epoch: "bench", offset: 1), time: Date(), publisher: nil, payload: smallPayload)
            return { _ = JSONEnvelope.encode(message) }
        },
        Path(name: "WebSocket frame encoding") {
            { _ = WebSocketFrameBytes.frame(smallPayload) }
        },
        Path(name: "permessage-deflate, compress 4 KiB of JSON") {
            { precondition(PerMessageDeflate.compress(largePayload.bytes) != nil) }  // trap-ok: benchmark input, fixed
        },
        Path(name: "permessage-deflate, inflate 4 KiB of JSON") {
            let compressed = PerMessageDeflate.compress(largePayload.bytes) ?? largePayload.bytes
            return { _ = try? PerMessageDeflate.inflate(compressed, limit: 1 << 20) }
        },
        Path(name: "Fan-out of one message to 1,000 subscribers") {
            let hub = Hub()
            for _ in 0..<1000 {
                hub.subscribe(FrameTaker(), to: channel, member: PresenceMember(id: UUID(), info: nil, transport: "bench")) { _ in }
            }
            return { hub.publish(smallPayload, to: channel) { _ in } }
        },
    ]

    private static let channel = try! ChannelName("bench")  // trap-ok: a valid name, written here
    /// What Chromium sends to open `ws://127.0.0.1:8000/msg`.
    private static let browserUpgrade =
        "GET /msg HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nConnection: Upgrade\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n"
        + "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n"
        + "Upgrade: websocket\r\nOrigin: http://127.0.0.1:8000\r\nSec-WebSocket-Version: 13\r\nAccept-Encoding: gzip, deflate, br\r\n"
        + "Accept-Language: en-US,en;q=0.9\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        + "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    private static let smallPayload = Payload.text(String(repeating: "x", count: 64))
    /// Chat-like JSON: what compression is for.
    private static let largePayload = Payload.text(
        "[" + (0..<64).map { #"{"nick":"user\#($0 % 7)","text":"message number \#($0) in the lobby"}"# }.joined(separator: ",") + "]"
    )
}

/// A subscriber that does what a plain socket's does up to the socket: takes the shared frame.
private final class FrameTaker: Subscriber {
    func receive(_ message: Message) {
        _ = message.encoded(PlainFrame.self)
    }

    func receive(_ event: PresenceEvent) {}

    func lost(_ channel: ChannelName, current: StreamPosition) {}
}
