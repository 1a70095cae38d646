// SPDX-License-Identifier: Apache-2.0

import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1

/// A WebSocket upgrade as a mount's ``UpgradeCheck`` sees it, before the connection opens: the
/// place to check an `Origin`, a token in `Authorization` or the query, or the client's address.
public struct WebSocketUpgradeRequest: Sendable {
    /// The request target: path and query (`uri.queryParameters`).
    public let uri: URI
    /// The request's header fields, the handshake's own included.
    public let headers: HTTPFields
    /// The path parameters the mount path matched, e.g. `room` for `/rooms/{room}`.
    public let parameters: Parameters
    /// The client's address, as the operating system reports it.
    public let remoteAddress: SocketAddress?

    /// The request's path.
    public var path: String { uri.path }

    /// A request as a check sees it (for tests of your own checks).
    public init(uri: URI, headers: HTTPFields, parameters: Parameters = Parameters(), remoteAddress: SocketAddress? = nil) {
        self.uri = uri
        self.headers = headers
        self.parameters = parameters
        self.remoteAddress = remoteAddress
    }

    init(head: HTTPRequestHead, uri: URI, parameters: Parameters, remoteAddress: SocketAddress?) {
        var fields = HTTPFields()
        for (name, value) in head.headers {
            if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
        }
        self.init(uri: uri, headers: fields, parameters: parameters, remoteAddress: remoteAddress)
    }
}

/// What a mount's check decides about an upgrade.
public enum UpgradeDecision: Sendable {
    /// Open the connection; the 101 names `subprotocol` (one the client offered in
    /// `Sec-WebSocket-Protocol`) and carries `headers`.
    case accept(subprotocol: String? = nil, headers: HTTPFields = [:])
    /// Refuse with `error`'s status and JSON body; a plain GET of the path gets the same.
    case refuse(APIError)
}

/// Decides whether an upgrade on a mount's path may open. It runs on the connection's event
/// loop during the handshake, so it must decide from the request without waiting (checking a
/// signature is fine; a database call is not — do that in `open`, and `close` if it fails).
/// Throwing an ``APIError`` refuses with it; any other error refuses with 400 `invalid_request`.
public typealias UpgradeCheck = @Sendable (WebSocketUpgradeRequest) throws -> UpgradeDecision
