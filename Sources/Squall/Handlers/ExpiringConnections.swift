import Foundation
import SquallCore
import Synchronization

/// The live WebSocket connections whose token expires, each closed with 4002
/// (``Disconnect/tokenExpired``) by a sweep once a second (``sweep(now:)``) rather than by a timer
/// of its own: a timer per connection cost a handshake more than verifying its token. (Also a
/// `/ws` connection that owes its `connect`, closed with 4001 when its time is up.)
///
/// Contracts: a connection is closed at most a sweep after its time; watching it again (a
/// fresh token) replaces its time; a closed connection is forgotten, so the table holds only
/// open connections.
public final class ExpiringConnections: Sendable {
    private let watched = Mutex<[UUID: (until: Date, connection: WebSocketConnection, disconnect: Disconnect)]>([:])

    public init() {}

    /// Closes `connection` with `disconnect` at `until`, or as a later call says.
    func watch(_ connection: WebSocketConnection, until: Date, closing disconnect: Disconnect = .tokenExpired) {
        watched.withLock { $0[connection.id] = (until, connection, disconnect) }
    }

    /// Stops watching `connection` (it closed).
    func forget(_ connection: WebSocketConnection) {
        _ = watched.withLock { $0.removeValue(forKey: connection.id) }
    }

    /// Closes every connection whose time has come.
    public func sweep(now: Date = Date()) {
        let due = watched.withLock { watched in
            let due = watched.values.filter { $0.until <= now }
            for entry in due { watched[entry.connection.id] = nil }
            return due
        }
        for entry in due { entry.connection.close(entry.disconnect) }
    }

    /// How many connections are watched.
    public var count: Int { watched.withLock { $0.count } }
}
