// SPDX-License-Identifier: Apache-2.0

import Testing

@testable import Squall

/// Which request paths a mount serves, and the parameters it reads from them.
@Suite struct WebSocketMountTests {
    static func mount(_ path: String) -> WebSocketMount {
        WebSocketMount(
            path: path,
            handler: MountedHandler(handler: BroadcastHandler(), pool: ConnectionPool(), logger: Logger(label: "test"), disconnections: Disconnections()),
            check: nil)
    }

    static let matches: [(String, String, [String: String])] = [
        ("/msg", "/msg", [:]),
        ("/msg", "/msg/", [:]),
        ("/msg", "//msg", [:]),
        ("msg", "/msg", [:]),
        ("/rooms/{room}", "/rooms/lobby", ["room": "lobby"]),
        ("/rooms/{room}/users/{user}", "/rooms/a/users/b", ["room": "a", "user": "b"]),
        ("/rooms/{room}", "/rooms/caf%C3%A9", ["room": "caf%C3%A9"]),
        ("/", "/", [:]),
    ]

    @Test(arguments: matches)
    func thesePathsMatch(_ path: String, _ requestPath: String, _ parameters: [String: String]) throws {
        let found = try #require(Self.mount(path).match(requestPath[...]), "\(requestPath) on \(path)")
        #expect(Dictionary(uniqueKeysWithValues: found.map { (String($0.key), String($0.value)) }) == parameters)
    }

    static let misses: [(String, String)] = [
        ("/msg", "/ws"),
        ("/msg", "/msg/extra"),
        ("/msg", "/MSG"),
        ("/msg", "/ms"),
        ("/msg", "/msgs"),
        ("/msg", "/"),
        ("/rooms/{room}", "/rooms"),
        ("/rooms/{room}", "/rooms/"),
        ("/rooms/{room}", "/rooms/a/b"),
        ("/rooms/{room}/users/{user}", "/rooms/a/users"),
        ("/", "/msg"),
    ]

    @Test(arguments: misses)
    func thesePathsDoNotMatch(_ path: String, _ requestPath: String) {
        #expect(Self.mount(path).match(requestPath[...]) == nil, "\(requestPath) on \(path)")
    }
}
