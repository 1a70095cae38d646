// SPDX-License-Identifier: Apache-2.0

import Squall
import Testing

@Suite("Bad HTTP input: a JSON error with a stable code, and nothing else affected")
struct HTTPBadInputTests {
    @Test("each class of bad request gets its status and code")
    func badRequests() async throws {
        var configuration = LiveServer.configuration(maxMessageSize: 1024)
        configuration.longPollWait = .seconds(1)
        try await LiveServer.run(configuration) { server in
            let watcher = try await TestClient.connect(server.url("/msg/calm"))
            try await LiveServer.eventually("the watcher subscribed") { server.connections.count == 1 }

            let cases: [(method: String, path: String, body: [UInt8]?, contentType: String?, status: Int, code: String)] = [
                ("GET", "/channels/bad%20name/messages", nil, nil, 400, "invalid_channel"),
                ("GET", "/channels/\(String(repeating: "x", count: 129))/history", nil, nil, 400, "invalid_channel"),
                ("GET", "/channels/ok/events?since=12", nil, nil, 400, "invalid_position"),
                ("GET", "/channels/ok/messages?since=abc:def", nil, nil, 400, "invalid_position"),
                ("GET", "/channels/ok/messages?wait=soon", nil, nil, 400, "invalid_parameter"),
                ("GET", "/channels/ok/messages?wait=-1", nil, nil, 400, "invalid_parameter"),
                ("GET", "/channels/ok/history?limit=0", nil, nil, 400, "invalid_parameter"),
                ("GET", "/channels/ok/messages?limit=5000", nil, nil, 400, "invalid_parameter"),
                ("POST", "/channels/ok/messages", Array(repeating: 65, count: 2048), "text/plain", 413, "message_too_large"),
                ("POST", "/channels/ok/messages", [0xC3, 0x28], "text/plain; charset=utf-8", 400, "invalid_utf8"),
                ("POST", "/channels/bad!/messages", [65], "text/plain", 400, "invalid_channel"),
                ("GET", "/no/such/route", nil, nil, 404, "not_found"),
                ("GET", "/msg/bad!", nil, nil, 400, "invalid_channel"),
                ("GET", "/msg?since=nope", nil, nil, 400, "invalid_position"),
                ("GET", "/msg/fine", nil, nil, 426, "websocket_required"),
            ]
            for request in cases {
                let response = try await server.send(
                    .init(rawValue: request.method),
                    request.path,
                    body: request.body,
                    contentType: request.contentType
                )
                let error = try WireEvent.decode(response.body).error
                #expect(response.status == request.status, "\(request.method) \(request.path)")
                #expect(error?.code == request.code, "\(request.method) \(request.path): \(response.body)")
                #expect(error?.message.isEmpty == false)
            }

            // A WebSocket upgrade with a bad channel name is refused with the same error.
            let refused = try await RawUpgrade.responseHead(port: server.port, path: "/msg/bad!")
            #expect(refused.hasPrefix("HTTP/1.1 400"), "\(refused)")

            // Nothing was published, nothing broke: the watcher still gets the next real message.
            #expect(try await server.getJSON("/channels/ok/history").event.messages?.isEmpty == true)
            try await server.publish("still serving", to: "calm")
            #expect(try await watcher.nextText() == "still serving")
        }
    }

    @Test("a binary POST is published as binary and delivered as a binary frame")
    func binaryPublish() async throws {
        try await LiveServer.run { server in
            let client = try await TestClient.connect(server.url("/msg/bin"))
            try await LiveServer.eventually("subscribed") { server.connections.count == 1 }
            let response = try await server.send(.POST, "/channels/bin/messages", body: [0, 1, 254, 255], contentType: "application/octet-stream")
            #expect(response.status == 201)
            guard case .binary(let buffer) = try await client.next() else {
                Issue.record("expected a binary frame")
                return
            }
            #expect(Array(buffer.readableBytesView) == [0, 1, 254, 255])
        }
    }
}
