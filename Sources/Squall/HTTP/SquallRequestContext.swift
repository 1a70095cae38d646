// SPDX-License-Identifier: Apache-2.0

import HTTPTypes
import Hummingbird
import NIOCore

/// The request context of every Squall route: Hummingbird's, plus the connection's socket,
/// which the access log reads the peer's address from (called a socket, not a channel, since
/// the routes it serves are about pub/sub channels).
public struct SquallRequestContext: RequestContext {
    /// Hummingbird's per-request storage.
    public var coreContext: CoreRequestContextStorage
    /// The TCP connection the request arrived on.
    public let socket: any Channel

    /// Creates the context for a request arriving on `source.channel`.
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.socket = source.channel
    }

    /// The peer's address, as the operating system reports it.
    public var remoteAddress: SocketAddress? { socket.remoteAddress }

    /// The client `request` is from: the peer, or the client a trusted proxy forwards it for.
    func client(of request: Request, _ addresses: ClientAddresses) -> IPAddress? {
        let peer = IPAddress(remoteAddress)
        guard addresses.isTrustedProxy(peer) else { return peer }  // the header is not read
        let name: HTTPField.Name =
            switch addresses.forwardingHeader {
            case .forwarded: .forwarded
            case .xForwardedFor: .xForwardedFor
            }
        let values = request.headers[values: name]
        return addresses.client(peer: peer, forwarding: values.isEmpty ? nil : values.joined(separator: ", "))
    }
}

extension HTTPField.Name {
    /// RFC 7239's `Forwarded`.
    static let forwarded = HTTPField.Name("Forwarded")!  // trap-ok: a valid field name, written here
    /// The de-facto `X-Forwarded-For`.
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!  // trap-ok: a valid field name, written here
}

extension SocketAddress {
    /// The address without its port, as Tornado prints it in access logs: `127.0.0.1`, `::1`.
    var hostDescription: String { ipAddress ?? description }
}
