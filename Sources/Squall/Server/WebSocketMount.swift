// SPDX-License-Identifier: Apache-2.0

import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTP1

/// A WebSocket path and what serves it.
struct WebSocketMount: Sendable {
    /// Validates an upgrade request — NIO's head, its parsed URI, the path parameters and the
    /// client's address — before it is accepted, and returns extra response headers. A refused
    /// upgrade is answered with the same error a plain GET gets. (NIO's head, not a Hummingbird
    /// `Request`: the built-in mounts check on every handshake, and building one per handshake
    /// would be most of the check's cost; a public ``UpgradeCheck`` gets its request built.)
    /// Decides an upgrade from its head, its URI, the path's parameters, the peer's address and
    /// the client's (``ClientAddresses``: behind a trusted proxy, whom it forwards for).
    typealias Check = @Sendable (HTTPRequestHead, URI, Parameters, SocketAddress?, IPAddress?) throws -> Acceptance

    /// An accepted upgrade: extra response headers, and who the client is when its token said.
    struct Acceptance {
        var headers: HTTPFields = [:]
        var identity: ClientIdentity? = nil
    }

    let path: String
    /// The handler, with the server's pool and logger that its connections share.
    let mounted: MountedHandler
    let check: Check
    private let segments: [Substring]

    /// `path` holds literal segments and `{name}` parameters, each matching one whole segment.
    init(path: String, handler: MountedHandler, check: @escaping Check) {
        self.path = path
        self.mounted = handler
        self.check = check
        self.segments = path.split(separator: "/")
    }

    /// A mount whose upgrades `check` decides (every upgrade is accepted without one), after
    /// `identify` has said who the client is from its token (refusing a bad one).
    init(
        path: String, handler: MountedHandler, check: UpgradeCheck?,
        identify: @escaping @Sendable (HTTPRequestHead, URI) throws -> ClientIdentity? = { _, _ in nil }
    ) {
        guard let check else {
            self.init(path: path, handler: handler) { head, uri, _, _, _ in Acceptance(identity: try identify(head, uri)) }
            return
        }
        self.init(path: path, handler: handler) { head, uri, parameters, remoteAddress, _ in
            let identity = try identify(head, uri)
            let request = WebSocketUpgradeRequest(head: head, uri: uri, parameters: parameters, remoteAddress: remoteAddress)
            switch try check(request) {
            case .accept(let subprotocol, var headers):
                if let subprotocol { headers[.secWebSocketProtocol] = subprotocol }
                return Acceptance(headers: headers, identity: identity)
            case .refuse(let error):
                throw error
            }
        }
    }

    /// The parameters, if `requestPath` is this mount's path.
    func match(_ requestPath: Substring) -> Parameters? {
        // Walks the path in place: splitting it into an array per mount tried cost more than
        // the rest of choosing a mount.
        var parameters = Parameters()
        var rest = requestPath.drop { $0 == "/" }
        for segment in segments {
            guard !rest.isEmpty else { return nil }
            let end = rest.firstIndex(of: "/") ?? rest.endIndex
            let part = rest[..<end]
            if segment.first == "{", segment.last == "}" {
                parameters.append(key: segment.dropFirst().dropLast(), value: part)
            } else if segment != part {
                return nil
            }
            rest = rest[end...].drop { $0 == "/" }
        }
        return rest.isEmpty ? parameters : nil
    }
}
