// SPDX-License-Identifier: Apache-2.0

import Logging

/// What every connection of one mount shares, held once rather than by each connection: the
/// handler, how its hooks run, and the server's pool and logger.
final class MountedHandler: Sendable {
    let handler: any WebSocketHandler
    /// `handler` when its hooks run on the event loop: looked up once, since a cast to a
    /// protocol costs a search of the conformance tables.
    let nonBlocking: (any NonBlockingWebSocketHandler)?
    /// The server's pool of open connections, which every connection joins.
    let pool: ConnectionPool
    /// The server's logger; a connection's ``WebSocketConnection/logger`` adds its id.
    let logger: Logger
    /// What lifecycle events call the mount's transport: `ws`, `msg`, or `websocket` for a
    /// handler of the application's.
    let transport: String
    /// Where its connections' `connected` and `disconnected` events go, when webhooks are on.
    let events: LifecycleEvents?
    /// Where its connections' endings are counted, by cause, for `/metrics`.
    let disconnections: Disconnections
    /// Whether the handler records its connections' events itself (Squall's `/ws` and `/msg`,
    /// which know who a client is only once the hooks have decided), rather than the connection.
    var announcesItself: Bool { transport != "websocket" }

    init(
        handler: any WebSocketHandler, pool: ConnectionPool, logger: Logger, transport: String = "websocket", events: LifecycleEvents? = nil,
        disconnections: Disconnections
    ) {
        self.handler = handler
        self.nonBlocking = handler as? any NonBlockingWebSocketHandler
        self.pool = pool
        self.logger = logger
        self.transport = transport
        self.events = events
        self.disconnections = disconnections
    }
}
