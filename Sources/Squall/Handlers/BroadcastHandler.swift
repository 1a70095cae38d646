// SPDX-License-Identifier: Apache-2.0

import SquallCore

/// The seed's chat server, `MsgHandler`, written with the hook API: every message a client
/// sends goes to every client of the pool, the sender included; a closed client leaves.
///
/// It keeps no history and reaches only its own pool; Squall's `/msg` serves the same hooks over
/// the channel log instead, so that every transport shares it. Mount one with
/// ``SquallServer/mount(_:handler:)``: each value owns its own pool, so two mounts are two rooms.
public struct BroadcastHandler: NonBlockingWebSocketHandler {
    /// The connections that receive each message.
    public let pool: ConnectionPool

    /// A broadcast handler over `pool` (a new, empty one by default).
    public init(pool: ConnectionPool = ConnectionPool()) {
        self.pool = pool
    }

    // Its hooks never wait, so Squall runs them on the connection's event loop.

    /// Joins the pool, on the event loop.
    public func openNow(_ connection: WebSocketConnection) throws {
        pool.add(connection)
    }

    /// Sends `message` to everyone in the pool, on the event loop.
    public func onMessageNow(_ connection: WebSocketConnection, _ message: Payload) throws {
        pool.broadcast(message)
    }

    /// Leaves the pool, on the event loop.
    public func onCloseNow(_ connection: WebSocketConnection, _ cause: CloseCause) {
        pool.remove(connection)
    }
}
