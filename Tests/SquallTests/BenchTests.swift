// SPDX-License-Identifier: Apache-2.0

import Foundation
import Squall
import SquallBench
import Testing

/// The load generator measures; these tests only check that what it counts is right, against a
/// live server (speed targets live in docs/benchmarks.md, never in tests).
@Suite("squall bench's load generators")
struct BenchTests {
    @Test("fan-out counts every delivery to every subscriber, none lost")
    func fanout() async throws {
        try await LiveServer.run { server in
            let target = try #require(BenchTarget(url: server.url("/msg")))
            let result = try await Benchmarks.fanout(target, subscribers: 8, messages: 300, size: 64, window: 16, timeout: .seconds(30))
            #expect(result.delivered == 8 * 300 && result.expected == 2400)
            #expect(result.clientCPUSeconds > 0)
        }
    }

    @Test("latency records one sample per delivery")
    func latency() async throws {
        try await LiveServer.run { server in
            let target = try #require(BenchTarget(url: server.url("/msg/latency")))
            let result = try await Benchmarks.latency(target, subscribers: 5, rate: 50, duration: .seconds(1))
            #expect(result.expected == 250 && result.delivered == 250)
            #expect(result.p50 <= result.p99 && result.p99 <= result.max && result.max > .zero)
        }
    }

    @Test("publish counts every acknowledgement and every delivery, over /ws, HTTP and the server API", arguments: PublishTransport.allCases)
    func publish(transport: PublishTransport) async throws {
        var configuration = LiveServer.configuration()
        configuration.publishRate = nil
        configuration.apiKeys = APIKeys(["bench-key"])
        try await LiveServer.run(configuration) { server in
            let target = try #require(BenchTarget(url: server.url("/ws")))
            let result = try await Benchmarks.publish(
                target, transport: transport, publishers: 4, messages: 400, size: 64, window: 8, timeout: .seconds(30), apiKey: "bench-key",
                batch: 30)
            #expect(result.acknowledged == 400 && result.refused == 0 && result.delivered == 400)
            #expect(result.acknowledgedP50Milliseconds <= result.acknowledgedP99Milliseconds && result.deliveredP99Milliseconds > 0)
        }
    }

    @Test("publish counts the server's refusals instead of retrying them")
    func publishRefused() async throws {
        var configuration = LiveServer.configuration()
        configuration.publishRate = RateLimit(perSecond: 1, burst: 100)
        try await LiveServer.run(configuration) { server in
            let target = try #require(BenchTarget(url: server.url("/ws")))
            let result = try await Benchmarks.publish(target, transport: .ws, publishers: 1, messages: 400, size: 64, window: 400, timeout: .seconds(30))
            #expect(result.refused >= 299, "a burst of 100 lets at most 101 of 400 through in a second")
            #expect(result.acknowledged + result.refused == 400 && result.delivered == result.acknowledged)
        }
    }

    @Test("handshakes complete and close")
    func handshakes() async throws {
        try await LiveServer.run { server in
            let target = try #require(BenchTarget(url: server.url("/msg")))
            let result = try await Benchmarks.handshakes(target, count: 40, concurrency: 8)
            #expect(result.count == 40)
            try await LiveServer.eventually("every benchmark socket closed") { server.connections.count == 0 }
        }
    }

    @Test("idle connections can require permessage-deflate, and fail against a server that declines it")
    func idleWithDeflate() async throws {
        let pid = getpid()
        try await LiveServer.run { server in
            var target = try #require(BenchTarget(url: server.url("/msg")))
            target.offersDeflate = true
            let result = try await Benchmarks.idle(target, count: 20, serverPID: pid)
            #expect(result.connections == 20)
        }
        var declining = LiveServer.configuration()
        declining.deflate = nil
        try await LiveServer.run(declining) { server in
            var target = try #require(BenchTarget(url: server.url("/msg")))
            target.offersDeflate = true
            await #expect(throws: BenchError.self) {
                _ = try await Benchmarks.idle(target, count: 1, serverPID: pid)
            }
        }
    }

    @Test("a URL that is not a WebSocket endpoint fails the handshake instead of hanging")
    func notAWebSocket() async throws {
        try await LiveServer.run { server in
            let target = try #require(BenchTarget(url: server.url("/healthz")))
            await #expect(throws: BenchError.self) {
                _ = try await Benchmarks.handshakes(target, count: 1)
            }
        }
    }
}
