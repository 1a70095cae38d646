// SPDX-License-Identifier: Apache-2.0

import Foundation
import HummingbirdWSClient
import NIOWebSocket
import Squall
import SquallCore
import Synchronization
import Testing

@Suite("The handler API: Tornado's hooks in Swift")
struct HandlerAPITests {
    @Test("a handler built at run time from closures runs open, onMessage and onClose")
    func closureHandler() async throws {
        let closes = Mutex<[String]>([])
        let shout = ClosureWebSocketHandler(
            name: "Shout",
            open: { connection in
                connection.writeMessage("welcome \(connection.id) to \(connection.request.uri.path)?\(connection.request.uri.query ?? "")")
            },
            onMessage: { connection, message in
                connection.writeMessage(message.text?.uppercased() ?? "binary")
            },
            onClose: { connection, cause in
                closes.withLock { $0.append("\(connection.id) \(cause)") }
            }
        )
        try await LiveServer.run(mounting: "/shout", shout) { server in
            let client = try await TestClient.connect(server.url("/shout?room=a"))
            let welcome = try await client.nextText()
            let parts = welcome.split(separator: " ")
            #expect(parts.first == "welcome")
            let id = try #require(UUID(uuidString: String(parts[1])))
            #expect(id.uuidString.dropFirst(14).first == "4", "connection ids are UUID version 4")
            #expect(parts.last == "/shout?room=a")

            client.send("hello")
            #expect(try await client.nextText() == "HELLO")
            client.send(binary: [1, 2, 3])
            #expect(try await client.nextText() == "binary")

            try await client.close()
            try await LiveServer.eventually("onClose ran") { !closes.withLock { $0.isEmpty } }
            #expect(closes.withLock { $0 } == ["\(id) closed by client"])
        }
    }

    @Test("a mount's check sees the request, names a subprotocol, or refuses with its JSON error")
    func upgradeCheck() async throws {
        let seen = Mutex<[String]>([])
        let echo = ClosureWebSocketHandler(name: "Echo", onMessage: { connection, message in connection.writeMessage(message) })
        let check: UpgradeCheck = { request in
            seen.withLock {
                $0.append(
                    "\(request.path) \(request.parameters["room"] ?? "-") \(request.headers[.authorization] ?? "-") \(request.remoteAddress?.ipAddress ?? "-")")
            }
            guard request.headers[.authorization] == "Bearer good" else {
                return .refuse(APIError(.custom("unauthorized", status: .unauthorized), message: "no token"))
            }
            return .accept(subprotocol: "chat.v2", headers: [.cacheControl: "no-store"])
        }
        try await LiveServer.run(mounting: "/rooms/{room}", echo, check: check) { server in
            let client = try await TestClient.connect(
                server.url("/rooms/blue"),
                headers: [.authorization: "Bearer good", .secWebSocketProtocol: "chat.v2"]
            )
            client.send("hi")
            #expect(try await client.nextText() == "hi")
            #expect(seen.withLock { $0 } == ["/rooms/blue blue Bearer good 127.0.0.1"])
            // The 101 carries what the check answered.
            let accepted = try await RawUpgrade.responseHead(
                port: server.port, path: "/rooms/blue", headers: ["Authorization": "Bearer good", "Sec-WebSocket-Protocol": "chat.v2"])
            #expect(accepted.hasPrefix("HTTP/1.1 101"))
            #expect(accepted.lowercased().contains("sec-websocket-protocol: chat.v2"))
            #expect(accepted.lowercased().contains("cache-control: no-store"))

            let refused = try await RawUpgrade.responseHead(port: server.port, path: "/rooms/red")
            #expect(refused.hasPrefix("HTTP/1.1 401"), "refused with the check's error: \(refused)")
            let plain = try await server.get("/rooms/red")
            #expect(plain.status == 401)
            #expect(plain.body.contains(#""code":"unauthorized""#))
        }
    }

    @Test("a handler keeps typed state on each connection")
    func connectionStorage() async throws {
        enum Name: ConnectionStorageKey { typealias Value = String }
        let greeter = ClosureWebSocketHandler(
            name: "Greeter",
            onMessage: { connection, message in
                if let name = connection[Name.self] {
                    connection.writeMessage("again, \(name)")
                } else {
                    connection[Name.self] = message.text
                    connection.writeMessage("hello, \(message.text ?? "")")
                }
            }
        )
        try await LiveServer.run(mounting: "/greet", greeter) { server in
            let ada = try await TestClient.connect(server.url("/greet"))
            let bob = try await TestClient.connect(server.url("/greet"))
            ada.send("ada")
            bob.send("bob")
            #expect(try await ada.nextText() == "hello, ada")
            #expect(try await bob.nextText() == "hello, bob")
            ada.send("x")
            bob.send("y")
            #expect(try await ada.nextText() == "again, ada")
            #expect(try await bob.nextText() == "again, bob")
        }
    }

    @Test("connection.close(code, reason) reaches the client, after what was queued before it")
    func serverInitiatedClose() async throws {
        let closer = ClosureWebSocketHandler(
            name: "Closer",
            onMessage: { connection, message in
                connection.writeMessage("goodbye")
                connection.close(code: .policyViolation, reason: "no \(message.text ?? "")")
            })
        try await LiveServer.run(mounting: "/closer", closer) { server in
            let client = try await TestClient.connect(server.url("/closer"))
            client.send("spam")
            #expect(try await client.nextText() == "goodbye")
            let close = try await client.closeFrame()
            #expect(close?.closeCode == .policyViolation)
            #expect(close?.reason == "no spam")
        }
    }

    @Test("a hook that throws closes its connection with 1011, and only that one")
    func throwingHook() async throws {
        struct Boom: Error {}
        let fragile = ClosureWebSocketHandler(
            name: "Fragile",
            onMessage: { connection, message in
                if message.text == "boom" { throw Boom() }
                connection.writeMessage(message)
            })
        try await LiveServer.run(mounting: "/fragile", fragile) { server in
            let victim = try await TestClient.connect(server.url("/fragile"))
            let other = try await TestClient.connect(server.url("/fragile"))
            victim.send("boom")
            #expect(try await victim.closeFrame()?.closeCode == .unexpectedServerError)
            other.send("ok")
            #expect(try await other.nextText() == "ok")
        }
    }

    @Test("a conforming type works as a handler, with per-path pools kept apart")
    func conformingType() async throws {
        struct Counter: WebSocketHandler {
            let pool: ConnectionPool
            func open(_ connection: WebSocketConnection) async throws {
                pool.add(connection)
                pool.broadcast(.text("members: \(pool.count)"))
            }
            func onClose(_ connection: WebSocketConnection, _ cause: CloseCause) async {
                pool.remove(connection)
            }
        }
        let pool = ConnectionPool()
        try await LiveServer.run(mounting: "/count", Counter(pool: pool)) { server in
            let first = try await TestClient.connect(server.url("/count"))
            #expect(try await first.nextText() == "members: 1")
            let chat = try await TestClient.connect(server.url("/msg"))
            let second = try await TestClient.connect(server.url("/count"))
            #expect(try await first.nextText() == "members: 2")
            #expect(try await second.nextText() == "members: 2")
            chat.send("only for /msg")
            #expect(try await chat.nextText() == "only for /msg")
            first.send("ignored by Counter")
            second.send("ignored too")
            try await first.close()
            try await LiveServer.eventually("the pool shrank") { pool.count == 1 }
        }
    }

    @Test("graceful shutdown closes every WebSocket with 1001")
    func shutdownGoesAway() async throws {
        let client = try await LiveServer.run { server in
            try await TestClient.connect(server.url("/msg"))
        }
        let close = try await client.closeFrame()
        #expect(close?.closeCode == .goingAway)
        #expect(close?.reason == "server shutting down")
    }

    @Test("a mounted handler finds the connection token's user on the connection, and a bad token is refused")
    func mountedIdentity() async throws {
        let secret = String(repeating: "s", count: 32)
        let greet = ClosureWebSocketHandler(
            name: "Greet",
            open: { connection in connection.writeMessage("hello \(connection.identity?.user ?? "stranger")") }
        )
        var configuration = LiveServer.configuration()
        configuration.auth = AuthConfiguration(keys: [.secret(secret)])
        try await LiveServer.run(configuration, mounting: "/greet", greet) { server in
            let token = try await TokenKeysTests.token(TokenKeysTests.claims(sub: "ada", expiresIn: 1e9), secret: secret)
            let ada = try await TestClient.connect(server.url("/greet?token=\(token)"))
            #expect(try await ada.nextText() == "hello ada")
            let anonymous = try await TestClient.connect(server.url("/greet"))
            #expect(try await anonymous.nextText() == "hello stranger")
            let refused = try await RawUpgrade.responseHead(port: server.port, path: "/greet?token=\(token)x")
            #expect(refused.hasPrefix("HTTP/1.1 401"), "\(refused)")
        }
    }
}
