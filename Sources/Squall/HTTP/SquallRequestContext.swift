import Hummingbird
import NIOCore

/// The request context of every Squall route: Hummingbird's, plus the connection's channel,
/// which the access log reads the peer's address from.
public struct SquallRequestContext: RequestContext {
    /// Hummingbird's per-request storage.
    public var coreContext: CoreRequestContextStorage
    /// The TCP connection the request arrived on.
    public let channel: any Channel

    /// Creates the context for a request arriving on `source.channel`.
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    /// The peer's address, as the operating system reports it.
    public var remoteAddress: SocketAddress? { channel.remoteAddress }
}

extension SocketAddress {
    /// The address without its port, as Tornado prints it in access logs: `127.0.0.1`, `::1`.
    var hostDescription: String { ipAddress ?? description }
}
