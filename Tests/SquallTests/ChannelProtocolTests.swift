// SPDX-License-Identifier: Apache-2.0

import Foundation
import HTTPTypes
import Squall
import SquallCore
import Testing

@Suite("WS /ws: the squall.v1 JSON protocol")
struct ChannelProtocolTests {
    static let squallV1: HTTPFields = [.secWebSocketProtocol: "squall.v1"]

    @Test("welcome, subscribe, publish with an ack, then the message envelope to every subscriber")
    func subscribeAndPublish() async throws {
        try await LiveServer.run { server in
            let alice = try await TestClient.connect(server.url("/ws"), headers: Self.squallV1)
            let bob = try await TestClient.connect(server.url("/ws"))
            let welcome = try await alice.nextEvent()
            #expect(welcome.type == "welcome")
            let aliceID = try #require(welcome.client.flatMap { if case .string(let id) = $0 { id } else { nil } })
            _ = try await bob.next(type: "welcome")

            for client in [alice, bob] {
                client.send(#"{"op":"subscribe","channel":"room","ref":1}"#)
                let subscribed = try await client.nextEvent()
                #expect(subscribed.type == "subscribed" && subscribed.channel == "room" && subscribed.ref == .number(1))
                #expect(subscribed.offset == 0 && subscribed.recovered == nil)
            }

            alice.send(#"{"op":"publish","channel":"room","data":"hi bob","ref":"p1"}"#)
            let delivered = try await bob.next(type: "message")
            #expect(delivered.data == "hi bob" && delivered.channel == "room" && delivered.offset == 1)
            #expect(delivered.publisher == aliceID)
            #expect(UUID(uuidString: delivered.id ?? "") != nil)
            let ack = try await alice.next(type: "published")
            #expect(ack.ref == .string("p1") && ack.offset == 1 && ack.id == delivered.id && ack.epoch == delivered.epoch)

            alice.send(#"{"op":"publish","channel":"room","data":"AAH/","encoding":"base64"}"#)
            let binary = try await bob.next(type: "message")
            #expect(binary.encoding == "base64" && binary.data == "AAH/" && binary.offset == 2)
        }
    }

    @Test("history returns retained messages after a position; unsubscribe stops delivery")
    func historyAndUnsubscribe() async throws {
        try await LiveServer.run { server in
            let client = try await TestClient.connect(server.url("/ws"))
            _ = try await client.next(type: "welcome")
            for n in 1...3 { try await server.publish("m\(n)", to: "log") }
            client.send(#"{"op":"history","channel":"log","ref":7}"#)
            let all = try await client.nextEvent()
            #expect(all.type == "history" && all.ref == .number(7) && all.texts == ["m1", "m2", "m3"] && all.offset == 3)

            let since = #"{"epoch":"\#(all.epoch!)","offset":1}"#
            client.send(#"{"op":"history","channel":"log","since":\#(since),"limit":1}"#)
            let page = try await client.nextEvent()
            #expect(page.texts == ["m2"] && page.offset == 2 && page.recovered == true)

            client.send(#"{"op":"subscribe","channel":"log"}"#)
            _ = try await client.next(type: "subscribed")
            client.send(#"{"op":"unsubscribe","channel":"log","ref":"u"}"#)
            let unsubscribed = try await client.nextEvent()
            #expect(unsubscribed.type == "unsubscribed" && unsubscribed.ref == .string("u"))
            try await server.publish("after unsubscribe", to: "log")
            client.send(#"{"op":"ping","ref":"last"}"#)
            let next = try await client.nextEvent()
            #expect(next.type == "pong" && next.ref == .string("last"), "no message arrives after unsubscribe")
        }
    }

    @Test("presence lists subscribers with their info; join and leave reach those who asked")
    func presence() async throws {
        try await LiveServer.run { server in
            let watcher = try await TestClient.connect(server.url("/ws"))
            _ = try await watcher.next(type: "welcome")
            watcher.send(#"{"op":"subscribe","channel":"lobby","presence":true,"info":{"name":"watcher"}}"#)
            _ = try await watcher.next(type: "subscribed")
            _ = try await watcher.next(type: "join")  // its own join

            let guest = try await TestClient.connect(server.url("/ws"))
            let guestID = try await guest.next(type: "welcome").client
            guest.send(#"{"op":"subscribe","channel":"lobby","info":{"name":"guest"}}"#)
            let join = try await watcher.next(type: "join")
            #expect(join.channel == "lobby")
            guard case .object(let member) = join.client else { throw TestFailure("join without a client") }
            #expect(member["id"] == guestID && member["info"] == .object(["name": .string("guest")]) && member["transport"] == .string("ws"))

            watcher.send(#"{"op":"presence","channel":"lobby","ref":1}"#)
            let listed = try await watcher.next(type: "presence")
            let infos: Set<JSONValue> = Set(listed.clients?.compactMap(\.info) ?? [])
            let expected: Set<JSONValue> = [.object(["name": .string("watcher")]), .object(["name": .string("guest")])]
            #expect(infos == expected)
            let http = try await server.getJSON("/channels/lobby/presence")
            #expect(http.status == 200 && http.event.clients?.count == 2)

            try await guest.close()
            let leave = try await watcher.next(type: "leave")
            guard case .object(let left) = leave.client else { throw TestFailure("leave without a client") }
            #expect(left["id"] == guestID)
            try await LiveServer.eventually("presence shrank") { try await server.getJSON("/channels/lobby/presence").event.clients?.count == 1 }
        }
    }

    @Test("the squall.v1 subprotocol is agreed when offered; other subprotocols are refused with 400")
    func subprotocol() async throws {
        try await LiveServer.run { server in
            let agreed = try await TestClient.connect(server.url("/ws"), headers: [.secWebSocketProtocol: "other, squall.v1"])
            #expect(try await agreed.nextEvent().type == "welcome")
            let head = try await RawUpgrade.responseHead(port: server.port, path: "/ws", headers: ["Sec-WebSocket-Protocol": "other, squall.v1"])
            #expect(head.hasPrefix("HTTP/1.1 101") && head.lowercased().contains("sec-websocket-protocol: squall.v1"))
            let refusedUpgrade = try await RawUpgrade.responseHead(port: server.port, path: "/ws", headers: ["Sec-WebSocket-Protocol": "mqtt"])
            #expect(refusedUpgrade.hasPrefix("HTTP/1.1 400"), "\(refusedUpgrade)")
            let refused = try await server.send(.GET, "/ws", contentType: nil, headers: [("Sec-WebSocket-Protocol", "mqtt")])
            #expect(refused.status == 400 && refused.body.contains("unsupported_protocol"))
        }
    }

    @Test("bad requests get an error with a stable code, and the socket stays open")
    func badRequests() async throws {
        try await LiveServer.run { server in
            let client = try await TestClient.connect(server.url("/ws"))
            let bystander = try await TestClient.connect(server.url("/ws"))
            _ = try await client.next(type: "welcome")
            _ = try await bystander.next(type: "welcome")
            bystander.send(#"{"op":"subscribe","channel":"calm"}"#)
            _ = try await bystander.next(type: "subscribed")

            let cases: [(String, String)] = [
                ("{not json", "invalid_json"),
                ("[1,2]", "invalid_request"),
                (#"{"channel":"x"}"#, "missing_field"),
                (#"{"op":"dance","ref":3}"#, "unknown_op"),
                (#"{"op":"subscribe"}"#, "missing_field"),
                (#"{"op":"subscribe","channel":"bad name!"}"#, "invalid_channel"),
                (#"{"op":"subscribe","channel":"x","since":{"epoch":"e","offset":"ten"}}"#, "invalid_request"),
                (#"{"op":"publish","channel":"x"}"#, "missing_field"),
                (#"{"op":"publish","channel":"x","data":"@@@","encoding":"base64"}"#, "invalid_request"),
                (#"{"op":"publish","channel":"x","data":"a","encoding":"rot13"}"#, "invalid_request"),
                (#"{"op":"unsubscribe","channel":"never"}"#, "not_subscribed"),
                (#"{"op":"history","channel":"x","limit":0}"#, "invalid_parameter"),
                (#"{"op":"presence","channel":""}"#, "invalid_channel"),
            ]
            for (request, code) in cases {
                client.send(request)
                let reply = try await client.nextEvent()
                #expect(reply.type == "error" && reply.code == code, "\(request) → \(code), got \(reply.code ?? "-")")
                #expect(reply.message?.isEmpty == false)
            }
            for n in 0..<1000 { client.send(#"{"op":"subscribe","channel":"c\#(n)"}"#) }
            for _ in 0..<1000 { _ = try await client.next(type: "subscribed") }
            client.send(#"{"op":"subscribe","channel":"one-too-many"}"#)
            #expect(try await client.nextEvent().code == "too_many_subscriptions")
            client.send(binary: [1, 2, 3])
            #expect(try await client.nextEvent().code == "unsupported_frame")
            client.send(#"{"op":"dance","ref":{"n":1}}"#)
            #expect(try await client.nextEvent().ref == .object(["n": .number(1)]), "errors echo the ref")

            client.send(#"{"op":"publish","channel":"calm","data":"still works"}"#)
            #expect(try await client.next(type: "published").offset == 1)
            #expect(try await bystander.next(type: "message").data == "still works")
        }
    }
}
