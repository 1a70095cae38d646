// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOWebSocket
import Squall
import SquallCore
import Testing

@Suite("One log, every transport: WebSocket, SSE, long and short polling")
struct TransportTests {
    static func configuration(retention: Retention = Retention()) -> SquallConfiguration {
        var configuration = LiveServer.configuration()
        configuration.retention = retention
        configuration.sseHeartbeat = .milliseconds(200)
        configuration.longPollWait = .seconds(5)
        return configuration
    }

    @Test("a message published on /ws reaches SSE, a long poll, a short poll and the plain /msg socket")
    func fromWebSocketToEverything() async throws {
        try await LiveServer.run(Self.configuration()) { server in
            let plain = try await TestClient.connect(server.url("/msg"))
            let sse = try await SSEClient.connect(server.httpURL("/channels/msg/events"))
            let start = try await sse.next(named: "subscribed").decoded()
            async let longPoll = server.getJSON("/channels/msg/messages?since=\(start.position)&wait=5")
            try await LiveServer.eventually("all subscribed") { server.hub.presence(try ChannelName("msg")).count == 2 }

            let publisher = try await TestClient.connect(server.url("/ws"))
            publisher.send(#"{"op":"publish","channel":"msg","data":"one log"}"#)
            let ack = try await publisher.next(type: "published")

            #expect(try await plain.nextText() == "one log")
            let event = try await sse.next(named: "message")
            #expect(try event.decoded().data == "one log" && event.id == "\(ack.epoch!):1")
            let polled = try await longPoll
            #expect(polled.status == 200 && polled.event.texts == ["one log"] && polled.event.offset == 1)
            let short = try await server.getJSON("/channels/msg/messages?since=\(start.position)&wait=0")
            #expect(short.event.texts == ["one log"])
            sse.close()
        }
    }

    @Test("messages from /msg and HTTP POST reach /ws and SSE subscribers in one order")
    func everythingToWebSocket() async throws {
        try await LiveServer.run(Self.configuration()) { server in
            let subscriber = try await TestClient.connect(server.url("/ws"))
            _ = try await subscriber.next(type: "welcome")
            subscriber.send(#"{"op":"subscribe","channel":"msg"}"#)
            _ = try await subscriber.next(type: "subscribed")
            let sse = try await SSEClient.connect(server.httpURL("/channels/msg/events"))
            _ = try await sse.next(named: "subscribed")

            let plain = try await TestClient.connect(server.url("/msg"))
            plain.send("from the seed's socket")
            #expect(try await plain.nextText() == "from the seed's socket")
            try await server.publish("from HTTP", to: "msg")
            plain.send(binary: [0xCA, 0xFE])

            let received = try await [subscriber.next(type: "message"), subscriber.next(type: "message"), subscriber.next(type: "message")]
            #expect(received.map(\.offset) == [1, 2, 3])
            #expect(received.map(\.data) == ["from the seed's socket", "from HTTP", "yv4="])
            #expect(received[2].encoding == "base64")
            let streamed = try await [sse.next(named: "message"), sse.next(named: "message"), sse.next(named: "message")]
            #expect(try streamed.map { try $0.decoded().offset } == [1, 2, 3])
            sse.close()
        }
    }

    @Test("/msg/{channel} sockets are separate rooms on their own logs")
    func plainChannelSockets() async throws {
        try await LiveServer.run(Self.configuration()) { server in
            let red = try await TestClient.connect(server.url("/msg/red"))
            let blue = try await TestClient.connect(server.url("/msg/blue"))
            try await LiveServer.eventually("both subscribed") { server.connections.count == 2 }
            red.send("red only")
            #expect(try await red.nextText() == "red only")
            try await server.publish("blue only", to: "blue")
            #expect(try await blue.nextText() == "blue only", "blue never saw red's message")
            #expect(try await server.getJSON("/channels/red/history").event.texts == ["red only"])
        }
    }

    // MARK: - Resume

    @Test("/ws resumes after a disconnect: every missed message once, in order, then live")
    func resumeWebSocket() async throws {
        try await LiveServer.run(Self.configuration()) { server in
            let first = try await TestClient.connect(server.url("/ws"))
            _ = try await first.next(type: "welcome")
            first.send(#"{"op":"subscribe","channel":"r"}"#)
            _ = try await first.next(type: "subscribed")
            try await server.publish("seen", to: "r")
            let last = try await first.next(type: "message")
            try await first.close()

            for n in 1...5 { try await server.publish("missed \(n)", to: "r") }
            let again = try await TestClient.connect(server.url("/ws"))
            _ = try await again.next(type: "welcome")
            again.send(#"{"op":"subscribe","channel":"r","since":{"epoch":"\#(last.epoch!)","offset":\#(last.offset!)}}"#)
            let subscribed = try await again.next(type: "subscribed")
            #expect(subscribed.recovered == true && subscribed.offset == 6)
            try await server.publish("live", to: "r")
            var texts: [String] = []
            for _ in 0..<6 { texts.append(try await again.next(type: "message").data ?? "") }
            #expect(texts == (1...5).map { "missed \($0)" } + ["live"])
        }
    }

    @Test("SSE resumes from Last-Event-ID with nothing lost and nothing twice")
    func resumeSSE() async throws {
        try await LiveServer.run(Self.configuration()) { server in
            let first = try await SSEClient.connect(server.httpURL("/channels/s/events"))
            _ = try await first.next(named: "subscribed")
            try await server.publish("a", to: "s")
            try await server.publish("b", to: "s")
            _ = try await first.next(named: "message")
            let lastSeen = try await first.next(named: "message")
            first.close()

            try await server.publish("c", to: "s")
            try await server.publish("d", to: "s")
            let resumed = try await SSEClient.connect(server.httpURL("/channels/s/events"), lastEventID: lastSeen.id)
            let subscribed = try await resumed.next(named: "subscribed")
            #expect(try subscribed.decoded().recovered == true && subscribed.id == lastSeen.id)
            try await server.publish("e", to: "s")
            var texts: [String] = []
            for _ in 0..<3 { texts.append(try await resumed.next(named: "message").decoded().data ?? "") }
            #expect(texts == ["c", "d", "e"])
            resumed.close()
        }
    }

    @Test("polls resume from since: long and short polls return exactly the messages after it")
    func resumePolling() async throws {
        try await LiveServer.run(Self.configuration()) { server in
            let empty = try await server.getJSON("/channels/p/messages?wait=0")
            #expect(empty.event.messages?.isEmpty == true && empty.event.recovered == true)
            var position = empty.event.position
            var received: [String] = []
            for n in 1...4 {
                try await server.publish("p\(n)", to: "p")
                let page = try await server.getJSON("/channels/p/messages?since=\(position)&wait=\(n % 2 == 0 ? 0 : 5)")
                received += page.event.texts
                position = page.event.position
            }
            for n in 5...7 { try await server.publish("p\(n)", to: "p") }
            let batch = try await server.getJSON("/channels/p/messages?since=\(position)&limit=2")
            received += batch.event.texts
            let rest = try await server.getJSON("/channels/p/messages?since=\(batch.event.position)")
            received += rest.event.texts
            #expect(received == (1...7).map { "p\($0)" })
        }
    }

    @Test("a long poll waits for the next message, and answers empty before its wait ends")
    func longPollWaitsAndTimesOut() async throws {
        try await LiveServer.run(Self.configuration()) { server in
            let start = try await server.getJSON("/channels/lp/messages?wait=0").event.position
            let clock = ContinuousClock()
            let began = clock.now
            let idle = try await server.getJSON("/channels/lp/messages?since=\(start)&wait=0.5")
            let waited = clock.now - began
            #expect(idle.status == 200 && idle.event.messages?.isEmpty == true && idle.event.position == start)
            #expect(waited >= .milliseconds(450) && waited < .seconds(4))

            async let woken = server.getJSON("/channels/lp/messages?since=\(start)&wait=30")
            try await Task.sleep(for: .milliseconds(200))
            try await server.publish("wake up", to: "lp")
            #expect(try await woken.event.texts == ["wake up"])
        }
        // A wait over the server's longest is cut to it.
        var short = Self.configuration()
        short.longPollWait = .milliseconds(300)
        try await LiveServer.run(short) { server in
            let start = try await server.getJSON("/channels/lp/messages?wait=0").event.position
            let began = ContinuousClock.now
            let capped = try await server.getJSON("/channels/lp/messages?since=\(start)&wait=30")
            #expect(capped.status == 200 && capped.event.messages?.isEmpty == true)
            #expect(ContinuousClock.now - began < .seconds(2), "answered at the server's 300 ms, not the client's 30 s")
        }
    }

    @Test("/msg/{channel}?since= resumes a plain socket")
    func resumePlainSocket() async throws {
        try await LiveServer.run(Self.configuration()) { server in
            let ack = try await server.publish("before", to: "plain")
            try await server.publish("after 1", to: "plain")
            try await server.publish("after 2", to: "plain")
            let client = try await TestClient.connect(server.url("/msg/plain?since=\(ack.position)"))
            #expect(try await client.nextText() == "after 1")
            #expect(try await client.nextText() == "after 2")
        }
    }

    // MARK: - Positions that cannot be resumed

    @Test("a position older than retention or from another epoch is answered recovered: false on /ws, SSE and polls")
    func unrecoverablePositions() async throws {
        try await LiveServer.run(Self.configuration(retention: Retention(maxMessages: 3))) { server in
            let first = try await server.publish("m1", to: "old")
            for n in 2...6 { try await server.publish("m\(n)", to: "old") }
            let tooOld = "\(first.epoch!):1"
            let otherEpoch = "zzzzzzzz:5"

            for since in [tooOld, otherEpoch] {
                let poll = try await server.getJSON("/channels/old/messages?since=\(since)&wait=5")
                #expect(poll.event.recovered == false && poll.event.messages?.isEmpty == true && poll.event.offset == 6, "poll from \(since)")

                let ws = try await TestClient.connect(server.url("/ws"))
                _ = try await ws.next(type: "welcome")
                let (epoch, offset) = (since.split(separator: ":")[0], since.split(separator: ":")[1])
                ws.send(#"{"op":"subscribe","channel":"old","since":{"epoch":"\#(epoch)","offset":\#(offset)}}"#)
                let subscribed = try await ws.next(type: "subscribed")
                #expect(subscribed.recovered == false && subscribed.offset == 6, "ws from \(since)")

                let sse = try await SSEClient.connect(server.httpURL("/channels/old/events"), lastEventID: since)
                let event = try await sse.next(named: "subscribed")
                #expect(try event.decoded().recovered == false && event.id == "\(first.epoch!):6", "sse from \(since)")
                sse.close()
                // The plain socket's 4010 is tested with Python's websockets (test_resume.py):
                // HummingbirdWSClient can miss a close frame that follows the 101 at once.
            }

            let history = try await server.getJSON("/channels/old/history")
            #expect(history.event.texts == ["m4", "m5", "m6"], "retention keeps the last three")
        }
    }

    // MARK: - Shutdown

    @Test("graceful shutdown ends SSE streams with a close event and answers waiting long polls")
    func shutdownEndsStreamsAndPolls() async throws {
        // The poll may wait 60 s; the test gives it 10: only an answer at shutdown passes.
        var patient = Self.configuration()
        patient.longPollWait = .seconds(60)
        let configuration = patient
        let (sse, poll) = try await withTimeout(.seconds(20), "a shutdown with a parked poll") {
            try await LiveServer.run(configuration) { server in
                let sse = try await SSEClient.connect(server.httpURL("/channels/bye/events"))
                let start = try await sse.next(named: "subscribed").decoded()
                let poll = Task { try await server.getJSON("/channels/bye/messages?since=\(start.position)&wait=60") }
                try await LiveServer.eventually("the poll is parked") { server.hub.waitingPolls == 1 }
                return (sse, poll)
            }
        }
        let close = try await sse.next(named: "close")
        #expect(close.data == #"{"code":1001,"reason":"server shutting down"}"#)
        let answer = try await withTimeout(.seconds(10), "the parked poll's answer") { try await poll.value }
        #expect(answer.status == 200 && answer.event.messages?.isEmpty == true)
    }
}
