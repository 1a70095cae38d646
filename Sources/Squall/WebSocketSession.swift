import Hummingbird
import HummingbirdWebSocket
import Logging
import SquallCore

/// Runs one upgraded connection through a ``WebSocketHandler``: the adapter between
/// hummingbird-websocket's inbound stream and outbound writer and the hook API.
struct WebSocketSession: Sendable {
    /// The hooks to run.
    let handler: any WebSocketHandler
    /// Every open connection of the server, whatever its handler (closed at shutdown).
    let registry: ConnectionPool
    let maxMessageSize: Int
    let outboxLimits: Outbox.Limits
    let closeTimeout: Duration

    /// Serves the connection until it closes. Errors thrown here (an oversized or invalid
    /// message, a failing hook) reach hummingbird-websocket, which closes with the matching
    /// code: 1009, 1007, or 1011.
    func run(
        inbound: WebSocketInboundStream,
        outbound: WebSocketOutboundWriter,
        context: WebSocketRouterContext<SquallRequestContext>
    ) async throws {
        let connection = WebSocketConnection(
            request: context.request,
            parameters: context.requestContext.parameters,
            channel: context.requestContext.channel,
            outboxLimits: outboxLimits,
            closeTimeout: closeTimeout,
            logger: context.logger
        )
        let logger = connection.logger
        registry.add(connection)
        defer { registry.remove(connection) }
        logger.info("WebSocket open", metadata: ["path": "\(context.request.uri.path)", "remote": "\(connection.remoteAddress?.hostDescription ?? "-")"])

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await connection.writeOutbox(to: outbound) }
            var failure: (any Error)?
            do {
                try await handler.open(connection)
                for try await message in inbound.messages(maxSize: maxMessageSize) {
                    let payload: Payload =
                        switch message {
                        case .text(let text): .text(text)
                        case .binary(let bytes): .binary(bytes)
                        }
                    logger.debug("WebSocket message", metadata: ["kind": "\(payload.kind)", "bytes": "\(payload.count)"])
                    try await handler.onMessage(connection, payload)
                }
            } catch {
                failure = error
            }
            // The peer is gone or has answered our close: nothing queued can still be sent.
            connection.outbox.finish()
            group.cancelAll()
            let cause: CloseCause =
                if let failure {
                    .failed(failure)
                } else if let disconnect = connection.outbox.disconnect {
                    .serverClosed(disconnect)
                } else {
                    .clientClosed
                }
            await handler.onClose(connection, cause)
            logger.info("WebSocket closed", metadata: ["cause": "\(cause)"])
            if let failure { throw failure }
        }
    }
}
