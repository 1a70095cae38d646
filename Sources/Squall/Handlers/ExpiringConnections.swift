import Foundation
import SquallCore
import Synchronization

/// The live WebSocket connections whose token expires, each closed with 4002
/// (``Disconnect/tokenExpired``) by a sweep once a second (``sweep(now:)``) rather than by a timer
/// of its own: a timer per connection cost a handshake more than verifying its token.
///
/// Contracts: a connection is closed at most a sweep after its time; watching it again (a
/// fresh token) replaces its time; a closed connection is forgotten, so the table holds only
/// open connections.
public final class ExpiringConnections: Sendable {
    private let watched = Mutex<[UUID: (until: Date, connection: WebSocketConnection)]>([:])

    public init() {}

    /// Closes `connection` at `until`, or at the time a later call gives.
    func watch(_ connection: WebSocketConnection, until: Date) {
        watched.withLock { $0[connection.id] = (until, connection) }
    }

    /// Stops watching `connection` (it closed).
    func forget(_ connection: WebSocketConnection) {
        _ = watched.withLock { $0.removeValue(forKey: connection.id) }
    }

    /// Closes every connection whose time has come.
    public func sweep(now: Date = Date()) {
        let due = watched.withLock { watched -> [WebSocketConnection] in
            let due = watched.values.filter { $0.until <= now }.map(\.connection)
            for connection in due { watched[connection.id] = nil }
            return due
        }
        for connection in due { connection.close(.tokenExpired) }
    }

    /// How many connections are watched.
    public var count: Int { watched.withLock { $0.count } }
}
