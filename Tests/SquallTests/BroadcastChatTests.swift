// SPDX-License-Identifier: Apache-2.0

import HummingbirdWSClient
import NIOCore
import Squall
import SquallCore
import Testing

@Suite("The seed's chat on WS /msg")
struct BroadcastChatTests {
    @Test("a message from one of three clients reaches all three, the sender included")
    func threeClients() async throws {
        try await LiveServer.run { server in
            let clients = try await [
                TestClient.connect(server.url("/msg")),
                TestClient.connect(server.url("/msg")),
                TestClient.connect(server.url("/msg")),
            ]
            try await LiveServer.eventually("all three joined") { server.connections.count == 3 }
            clients[1].send("你好, Squall")
            for client in clients {
                #expect(try await client.nextText() == "你好, Squall")
            }
            for client in clients { try await client.close() }
        }
    }

    @Test("binary messages are broadcast as binary, byte for byte")
    func binaryBroadcast() async throws {
        try await LiveServer.run { server in
            let sender = try await TestClient.connect(server.url("/msg"))
            let receiver = try await TestClient.connect(server.url("/msg"))
            try await LiveServer.eventually("both joined") { server.connections.count == 2 }
            let bytes: [UInt8] = [0, 1, 2, 0xFF, 0xFE, 0x80]
            sender.send(binary: bytes)
            for client in [sender, receiver] {
                guard case .binary(let buffer) = try await client.next() else {
                    Issue.record("expected a binary message")
                    return
                }
                #expect(Array(buffer.readableBytesView) == bytes)
            }
        }
    }

    @Test("a closed client leaves the pool; the others keep receiving")
    func closedClientLeaves() async throws {
        let room = ConnectionPool()
        try await LiveServer.run(mounting: "/room", BroadcastHandler(pool: room)) { server in
            let leaving = try await TestClient.connect(server.url("/room"))
            let staying = try await [TestClient.connect(server.url("/room")), TestClient.connect(server.url("/room"))]
            try await LiveServer.eventually("three in the room") { room.count == 3 }

            let close = try await leaving.close()
            #expect(close?.closeCode == .normalClosure)
            try await LiveServer.eventually("the closed client left the room") { room.count == 2 }

            staying[0].send("still here")
            for client in staying {
                #expect(try await client.nextText() == "still here")
            }
            #expect(room.broadcast(.text("direct")) == 2, "the pool delivers to the two open clients only")
        }
    }

    @Test("a pool broadcast reaches clients with and without permessage-deflate, from either kind")
    func broadcastWithCompression() async throws {
        let room = ConnectionPool()
        try await LiveServer.run(mounting: "/room", BroadcastHandler(pool: room)) { server in
            let compressed = try await TestClient.connect(server.url("/room"), compressed: true)
            let plain = try await TestClient.connect(server.url("/room"))
            try await LiveServer.eventually("both in the room") { room.count == 2 }
            #expect(room.connections.filter { $0.deflate != nil }.count == 1, "only the client that offered it negotiated it")
            // Over the 1 KiB minimum: compressed once by the pool for the one client, plain for the other.
            let long = String(repeating: "the same words again and again ", count: 100)
            for sender in [compressed, plain] {
                sender.send(long)
                for client in [compressed, plain] {
                    #expect(try await client.nextText() == long)
                }
            }
        }
    }

    @Test("a plain HTTP GET of /msg gets 426 with a JSON error")
    func plainGetIsRefused() async throws {
        try await LiveServer.run { server in
            let response = try await server.get("/msg")
            #expect(response.status == 426)
            #expect(response.body.contains(#""code":"websocket_required""#))
        }
    }

    @Test("GET / serves the demo page; /squall.js and /squall.mjs serve the browser client")
    func demoPage() async throws {
        try await LiveServer.run { server in
            let page = try await server.get("/")
            #expect(page.status == 200)
            #expect(page.headers.contains { $0.0.lowercased() == "content-type" && $0.1.hasPrefix("text/html") })
            #expect(page.body.contains(#"<script src="/squall.js"></script>"#))
            #expect(page.body.contains("textContent"), "messages are shown as text, never as HTML")
            let script = try await server.get("/squall.js")
            #expect(script.status == 200 && script.body.contains("global.Squall = "))
            #expect(script.headers.contains { $0.0.lowercased() == "content-type" && $0.1.hasPrefix("text/javascript") })
            let module = try await server.get("/squall.mjs")
            #expect(module.status == 200 && module.body.contains("export default Squall"))
        }
    }

    @Test("GET /healthz reports the open connections")
    func health() async throws {
        try await LiveServer.run { server in
            let client = try await TestClient.connect(server.url("/msg"))
            try await LiveServer.eventually("one connection") { server.connections.count == 1 }
            let response = try await server.get("/healthz")
            #expect(response.status == 200)
            #expect(response.body.contains(#""connections":1"#))
            try await client.close()
        }
    }
}
