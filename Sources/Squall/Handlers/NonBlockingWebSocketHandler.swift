// SPDX-License-Identifier: Apache-2.0

import SquallCore

/// A ``WebSocketHandler`` whose hooks never wait: they only touch in-memory state (the hub, a
/// pool) and queue writes. Squall runs them right on the connection's event loop, in order, with
/// no task and no thread hop per message — which is most of the cost of a small message, and
/// all of its latency on a busy core. The built-in `/msg`, `/ws` and ``BroadcastHandler`` are
/// such handlers; a hook that could block or await must stay an ordinary ``WebSocketHandler``.
///
/// A hook here runs on the event loop that serves this connection and a share of all others:
/// it must not block, wait or take long — touching memory, the hub, a pool and queueing writes
/// is what it is for. The async hooks of ``WebSocketHandler`` forward to these, so such a
/// handler still works wherever an ordinary one does. The contracts of ``WebSocketHandler``
/// hold unchanged.
///
/// ```swift
/// struct Echo: NonBlockingWebSocketHandler {
///     func openNow(_ connection: WebSocketConnection) throws {}
///     func onMessageNow(_ connection: WebSocketConnection, _ message: Payload) throws {
///         connection.writeMessage(message)
///     }
///     func onCloseNow(_ connection: WebSocketConnection, _ cause: CloseCause) {}
/// }
/// ```
public protocol NonBlockingWebSocketHandler: WebSocketHandler {
    /// `open`, on the event loop.
    func openNow(_ connection: WebSocketConnection) throws
    /// `onMessage`, on the event loop.
    func onMessageNow(_ connection: WebSocketConnection, _ message: Payload) throws
    /// `onClose`, on the event loop.
    func onCloseNow(_ connection: WebSocketConnection, _ cause: CloseCause)
}

extension NonBlockingWebSocketHandler {
    /// Runs ``openNow(_:)``.
    public func open(_ connection: WebSocketConnection) async throws {
        try openNow(connection)
    }

    /// Runs ``onMessageNow(_:_:)``.
    public func onMessage(_ connection: WebSocketConnection, _ message: Payload) async throws {
        try onMessageNow(connection, message)
    }

    /// Runs ``onCloseNow(_:_:)``.
    public func onClose(_ connection: WebSocketConnection, _ cause: CloseCause) async {
        onCloseNow(connection, cause)
    }
}

extension WebSocketConnection {
    /// Logs the connection's start, as every kind of hook runner does.
    func logOpen() {
        guard mounted.logger.logLevel <= .info else { return }  // no per-connection logger otherwise
        logger.info("WebSocket open", metadata: ["path": "\(uri.path)", "remote": "\(remoteAddress?.hostDescription ?? "-")"])
    }

    /// Logs one inbound message (at debug).
    func logMessage(_ payload: Payload) {
        guard mounted.logger.logLevel <= .debug else { return }  // no per-message logger otherwise
        logger.debug("WebSocket message", metadata: ["kind": "\(payload.kind)", "bytes": "\(payload.count)"])
    }

    /// Logs the end of the connection.
    func logClosed(_ cause: CloseCause) {
        guard mounted.logger.logLevel <= .info else { return }
        logger.info("WebSocket closed", metadata: ["cause": "\(cause)"])
    }

    /// Logs a hook's error; the caller closes with 1011.
    func logHookFailed(_ error: any Error) {
        logger.error("WebSocket hook failed", metadata: ["error": "\(error)"])
    }
}
