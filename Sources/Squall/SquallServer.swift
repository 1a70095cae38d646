import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import ServiceLifecycle
import SquallCore

/// The Squall server: the seed's chat at `WS /msg`, the demo page at `/`, and any
/// ``WebSocketHandler`` you mount, on one port.
///
/// It is a swift-service-lifecycle `Service`: run it in a `ServiceGroup` (as `squall serve`
/// does, with SIGINT and SIGTERM as graceful-shutdown signals) or call ``run()`` directly.
/// On graceful shutdown every WebSocket is closed with 1001 (going away) and the server
/// stops once the clients have answered, or after ``SquallConfiguration/closeTimeout``.
///
/// ```swift
/// var server = SquallServer(configuration: .init(port: 8080))
/// server.mount("/echo", handler: ClosureWebSocketHandler(name: "Echo", onMessage: { connection, message in
///     connection.writeMessage(message)
/// }))
/// try await server.run()
/// ```
public struct SquallServer: Service, CustomStringConvertible {
    /// What the server was configured with.
    public let configuration: SquallConfiguration
    /// Where the server logs: access lines, connections, and (at debug) each message.
    public let logger: Logger
    /// Every open WebSocket connection, whatever path it came in on.
    public let connections = ConnectionPool()
    private var mounts: [(path: String, handler: any WebSocketHandler)] = []
    private let onListening: @Sendable (SocketAddress) async -> Void

    /// A server with the seed's broadcast chat mounted at `/msg`.
    /// - Parameters:
    ///   - configuration: address, limits and timeouts.
    ///   - logger: where to log; its level filters what is written.
    ///   - onListening: called with the bound address once the server accepts connections
    ///     (useful with port 0, which picks a free port).
    public init(
        configuration: SquallConfiguration = SquallConfiguration(),
        logger: Logger = Logger(label: "squall"),
        onListening: @escaping @Sendable (SocketAddress) async -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.logger = logger
        self.onListening = onListening
        mount("/msg", handler: BroadcastHandler())
    }

    /// Serves `handler`'s hooks to WebSocket clients that connect to `path`. A plain HTTP
    /// request to `path` gets 426 (upgrade required). Mount before ``run()``.
    public mutating func mount(_ path: String, handler: some WebSocketHandler) {
        mounts.append((path, handler))
    }

    /// `SquallServer(127.0.0.1:8000)`, as service-lifecycle logs it.
    public var description: String { "SquallServer(\(configuration.host):\(configuration.port))" }

    /// Runs the server until it is shut down gracefully or cancelled.
    public func run() async throws {
        let application = try makeApplication()
        let group = ServiceGroup(
            configuration: .init(
                // Shut down in reverse: the drain first, while the HTTP server still runs.
                services: [application, ConnectionDrain(connections: connections, timeout: configuration.closeTimeout)],
                logger: logger
            )
        )
        try await group.run()
    }

    private func makeApplication() throws -> some Service {
        let assets = try StaticAssets()
        let connections = self.connections
        let router = Router(context: SquallRequestContext.self)
        router.add(middleware: AccessLogMiddleware(logger: logger, onWebSocketRouter: false))
        router.get("/") { _, _ in StaticAssets.response(assets.indexPage, contentType: "text/html; charset=utf-8") }
        router.get("/healthz") { _, _ in Health(status: "ok", connections: connections.count) }

        let webSocketRouter = Router(context: SquallRequestContext.self)
        webSocketRouter.add(middleware: AccessLogMiddleware(logger: logger, onWebSocketRouter: true))
        for (path, handler) in mounts {
            router.get(RouterPath(path)) { request, _ -> Response in
                throw APIError.webSocketRequired(request.uri.path)
            }
            let session = WebSocketSession(
                handler: handler,
                registry: connections,
                maxMessageSize: configuration.maxMessageSize,
                outboxLimits: configuration.outbox,
                closeTimeout: configuration.closeTimeout
            )
            webSocketRouter.ws(RouterPath(path)) { inbound, outbound, context in
                try await session.run(inbound: inbound, outbound: outbound, context: context)
            }
        }

        let webSocket = WebSocketServerConfiguration(
            maxFrameSize: configuration.maxMessageSize,
            autoPing: configuration.pingInterval.map { .enabled(timePeriod: $0) } ?? .disabled,
            closeTimeout: configuration.closeTimeout,
            validateUTF8: true
        )
        let logger = self.logger
        let onListening = self.onListening
        return Application(
            router: router,
            server: .http1WebSocketUpgrade(webSocketRouter: webSocketRouter, configuration: .init(ws: webSocket)),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Squall"),
            onServerRunning: { channel in
                guard let address = channel.localAddress else { return }
                logger.notice("Squall serving http://\(address.urlAuthority)/ — chat at ws://\(address.urlAuthority)/msg")
                await onListening(address)
            },
            logger: logger
        )
    }
}

/// The body of `GET /healthz`.
private struct Health: ResponseEncodable {
    let status: String
    let connections: Int
}

extension SocketAddress {
    /// `host:port` as it appears in a URL: `127.0.0.1:8000`, `[::1]:8000`.
    var urlAuthority: String {
        let host = ipAddress ?? "localhost"
        let port = self.port.map { ":\($0)" } ?? ""
        return host.contains(":") ? "[\(host)]\(port)" : "\(host)\(port)"
    }
}
