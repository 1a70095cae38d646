// SPDX-License-Identifier: Apache-2.0

import Squall

/// Tornado's `WebSocketHandler`, in Swift: greets, echoes, says goodbye.
struct Echo: WebSocketHandler {
    func open(_ connection: WebSocketConnection) async throws {
        connection.writeMessage("welcome, \(connection.id)")
    }
    func onMessage(_ connection: WebSocketConnection, _ message: Payload) async throws {
        connection.writeMessage(message)
    }
    func onClose(_ connection: WebSocketConnection, _ cause: CloseCause) async {
        connection.logger.info("bye: \(cause)")
    }
}

/// A value kept on each connection: the name its client gave in `?name=`.
enum Nickname: ConnectionStorageKey { typealias Value = String }

let port = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 8080
var server = SquallServer(configuration: .init(port: port))
server.mount("/echo", handler: Echo())
// Built at run time from closures, like Python's type(name, bases, dict); its check refuses a
// client that gives no name, and each client's name is kept on its connection. (Pages from
// other origins are refused by the server itself: see SquallConfiguration.origins.)
server.mount(
    "/shout",
    handler: ClosureWebSocketHandler(
        name: "Shout",
        open: { connection in
            connection[Nickname.self] = connection.request.uri.queryParameters["name"].map(String.init)
        },
        onMessage: { connection, message in
            let name = connection[Nickname.self] ?? "?"
            connection.writeMessage("\(name): \(message.text?.uppercased() ?? "")")
        }
    ),
    check: { request in
        guard request.uri.queryParameters["name"] != nil else {
            return .refuse(APIError(.custom("name_required", status: .badRequest), message: "connect with ?name=YOUR_NAME"))
        }
        return .accept()
    }
)
// A family of channels built from a dictionary, as type(name, bases, dict) builds a class:
// channels chat:… keep their last 100 messages, and only their subscribers may publish there.
try server.namespace("chat", ["history": 100, "presence": true, "publish": "subscribers"])
// Publishing through the hub reaches the channel's subscribers on every transport.
try await server.hub.publish(.text("the echo server is up"), to: try ChannelName("news"))
// Serves until Ctrl-C or SIGTERM, then closes every WebSocket with 1001 and exits.
try await server.runService()
