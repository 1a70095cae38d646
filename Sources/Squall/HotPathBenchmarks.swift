import Foundation
import NIOCore
import SquallCore
import Synchronization

/// Micro-benchmarks of the paths every message takes, so that a regression shows in numbers:
/// `squall bench hot-paths`. Each runs a fixed number of operations (bounded; no network) and
/// reports nanoseconds per operation, the best of a few rounds.
///
/// ordo-one/package-benchmark was the first choice; its only mirrored release (1.38.1) needs
/// swift-runtime-interposer on Linux with Swift 6.3, which the package mirror does not carry.
public enum HotPathBenchmarks {
    /// One hot path's cost.
    public struct Result: Sendable, Encodable, CustomStringConvertible {
        /// What was measured.
        public let name: String
        /// Operations per round.
        public let operations: Int
        /// Nanoseconds per operation, best round.
        public let nanosecondsPerOperation: Double

        /// `name: N ns/op`.
        public var description: String {
            "\(name): \(String(format: "%.1f", nanosecondsPerOperation)) ns/op"
        }
    }

    /// Runs every micro-benchmark; `scale` multiplies the operation counts (1 ≈ a second in a
    /// release build).
    public static func run(scale: Double = 1) -> [Result] {
        func count(_ base: Int) -> Int { max(1000, Int(Double(base) * scale) / 1000 * 1000) }
        let channel = try! ChannelName("bench")
        let payload = Payload.text(String(repeating: "x", count: 64))
        return [
            measure("log append (publish, no subscribers)", operations: count(200_000)) { count in
                let hub = Hub()
                for _ in 0..<count { hub.publish(payload, to: channel) }
            },
            measure("JSON envelope encoding", operations: count(100_000)) { count in
                let hub = Hub()
                for _ in 0..<count { _ = JSONEnvelope.encode(hub.publish(payload, to: channel)) }
            },
            measure("WebSocket frame encoding", operations: count(1_000_000)) { count in
                for _ in 0..<count { _ = WebSocketFrameBytes.frame(payload) }
            },
            measure("fan-out to 1,000 subscribers, per delivery", operations: count(2_000_000)) { count in
                let hub = Hub()
                let subscribers = (0..<1000).map { _ in CountingSubscriber() }
                for subscriber in subscribers {
                    hub.subscribe(subscriber, to: channel, member: PresenceMember(id: UUID(), info: nil, transport: "bench"))
                }
                for _ in 0..<(count / 1000) { hub.publish(payload, to: channel) }
                precondition(subscribers.allSatisfy { $0.frames.withLock { $0 } == count / 1000 })
            },
        ]
    }

    private static func measure(_ name: String, operations: Int, _ body: (Int) -> Void) -> Result {
        var best = Double.infinity
        for _ in 0..<3 {
            let start = ContinuousClock.now
            body(operations)
            let elapsed = ContinuousClock.now - start
            let nanoseconds = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
            best = min(best, nanoseconds / Double(operations))
        }
        return Result(name: name, operations: operations, nanosecondsPerOperation: best)
    }
}

/// A subscriber that does what a plain socket's does up to the socket: takes the shared frame.
private final class CountingSubscriber: Subscriber {
    let frames = Mutex(0)

    func receive(_ message: Message) {
        _ = message.encoded(PlainFrame.self)
        frames.withLock { $0 += 1 }
    }

    func receive(_ event: PresenceEvent) {}
}
