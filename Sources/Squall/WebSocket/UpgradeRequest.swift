// SPDX-License-Identifier: Apache-2.0

import NIOHTTP1

/// A WebSocket upgrade request as the connection keeps it: the head without the fields only the
/// handshake reads, and those fields' values.
///
/// Why split: an open connection keeps its request for handlers (``WebSocketConnection/request``),
/// and `Upgrade`, `Connection`, `Sec-WebSocket-Key`, `Sec-WebSocket-Version` and
/// `Sec-WebSocket-Extensions` mean nothing once it is open. The head's fields are stored in
/// exactly their size (NIO's decoder reserves room for 16).
struct UpgradeRequest {
    /// The head without the handshake-only fields.
    let head: HTTPRequestHead
    /// `Sec-WebSocket-Key`, trimmed.
    let key: String
    /// Every `Sec-WebSocket-Extensions` field, in order.
    let extensionOffers: [String]

    /// Whether a (case-insensitive) field name is one only the handshake reads.
    static func isHandshakeOnly(_ lowercasedName: String) -> Bool {
        switch lowercasedName {
        case "upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions": true
        default: false
        }
    }

}

extension UpgradeRequest {
    /// From a whole head, as NIO's HTTP parser read it.
    init(_ full: HTTPRequestHead) {
        var kept: [(String, String)] = []
        kept.reserveCapacity(full.headers.count)
        for (name, value) in full.headers where !Self.isHandshakeOnly(name.lowercased()) {
            kept.append((name, value))
        }
        head = HTTPRequestHead(version: full.version, method: full.method, uri: full.uri, headers: HTTPHeaders(kept))
        key = full.headers.first(name: "Sec-WebSocket-Key") ?? ""
        extensionOffers = full.headers["Sec-WebSocket-Extensions"]
    }
}
