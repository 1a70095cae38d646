// SPDX-License-Identifier: Apache-2.0

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
        /// What every operation returns when the path works.
        public let expected: ClosedRange<Int>
        /// Builds the path's state (outside any measurement) and returns one operation, which
        /// returns what it produced (bytes, deliveries, an offset: ``expected`` says), so that
        /// a test can tell it did its work and a benchmark can keep the optimizer from
        /// dropping it.
        public let prepare: @Sendable () -> @Sendable () -> Int
    }

    /// Every hot path: a connection's upgrade, then in the order a message meets them.
    public static let all: [Path] = [
        Path(name: "WebSocket upgrade: read a browser's request head, compute the accept value", expected: 28...28) {
            let head = ByteBuffer(string: browserUpgrade)
            return {
                guard case .upgrade(let request) = WebSocketHandshake.read(head) else { return 0 }
                // RFC 6455 §1.3's example key: its accept value is s3pPLMBiTxaQ9kYGzzhZRbK+xOo=.
                return WebSocketAccept.value(forKey: request.key.utf8) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" ? 28 : 0
            }
        },
        Path(name: "Log append (publish, no subscribers)", expected: 1...1) {
            let hub = Hub()
            let appended = TallyCounter()
            return {
                // 1 when the publish took the next offset, answered before it returned.
                let before = appended.value
                hub.publish(smallPayload, to: channel) { result in
                    if case .success(let message) = result, message.offset == UInt64(before + 1) { appended.add() }
                }
                return appended.value - before
            }
        },
        Path(name: "JSON envelope encoding", expected: 200...220) {
            let message = Message(channel: channel, position: StreamPosition(epoch: "bench", offset: 1), time: Date(), publisher: nil, payload: smallPayload)
            return { JSONEnvelope.encode(message).readableBytes }
        },
        Path(name: "WebSocket frame encoding", expected: 66...66) {
            { WebSocketFrameBytes.frame(smallPayload).readableBytes }
        },
        Path(name: "permessage-deflate, compress 4 KiB of JSON", expected: 1...1024) {
            { PerMessageDeflate.compress(largePayload.bytes)?.readableBytes ?? 0 }
        },
        Path(name: "permessage-deflate, inflate 4 KiB of JSON", expected: largePayload.count...largePayload.count) {
            let compressed = PerMessageDeflate.compress(largePayload.bytes) ?? largePayload.bytes
            return { (try? PerMessageDeflate.inflate(compressed, limit: 1 << 20))?.readableBytes ?? 0 }
        },
        Path(name: "Fan-out of one message to 1,000 subscribers", expected: 1000...1000) {
            let hub = Hub()
            let deliveries = TallyCounter()
            for _ in 0..<1000 {
                hub.subscribe(FrameTaker(deliveries), to: channel, member: PresenceMember(id: UUID(), info: nil, transport: "bench")) { _ in }
            }
            return {
                let before = deliveries.value
                hub.publish(smallPayload, to: channel) { _ in }
                return deliveries.value - before
            }
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

/// A count the hot paths keep of what they did.
private final class TallyCounter: Sendable {
    private let count = Atomic<Int>(0)
    var value: Int { count.load(ordering: .relaxed) }
    func add() { count.add(1, ordering: .relaxed) }
}

/// A subscriber that does what a plain socket's does up to the socket: takes the shared frame.
private final class FrameTaker: Subscriber {
    let deliveries: TallyCounter

    init(_ deliveries: TallyCounter) {
        self.deliveries = deliveries
    }

    func receive(_ message: Message) {
        if message.encoded(PlainFrame.self).readableBytes > 0 { deliveries.add() }
    }

    func receive(_ event: PresenceEvent) {}

    func lost(_ channel: ChannelName, current: StreamPosition) {}
}
