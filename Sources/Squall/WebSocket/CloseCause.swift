// SPDX-License-Identifier: Apache-2.0

import SquallCore

/// Why a WebSocket connection ended.
public enum CloseCause: Sendable, CustomStringConvertible {
    /// The client closed the connection, or the network dropped it.
    case clientClosed
    /// The server closed it, with this code and reason: ``WebSocketConnection/close(_:)``,
    /// an overflowing outbox, or shutdown.
    case serverClosed(Disconnect)
    /// A protocol error, an invalid or oversized message, or a hook that threw.
    case failed(any Error)
    /// The client did not answer a ping before the next one was due: it was dropped.
    case pingTimedOut

    /// A short phrase for logs.
    public var description: String {
        switch self {
        case .clientClosed: "closed by client"
        case .serverClosed(let disconnect): "closed by server: \(disconnect)"
        case .failed(let error): "failed: \(error)"
        case .pingTimedOut: "no pong within the ping interval"
        }
    }
}
