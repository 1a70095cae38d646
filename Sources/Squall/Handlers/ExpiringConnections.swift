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
    private struct Watched {
        let until: Date
        let connection: WebSocketConnection
        let disconnect: Disconnect
        /// Whom the refresh hook is told about, and over what.
        let user: String?
        let transport: String
    }

    private let watched = Mutex<[UUID: Watched]>([:])
    /// Where the refresh hook is found: a connection whose token expired is renewed if it
    /// allows, rather than closed.
    private let policy: LivePolicy?

    public convenience init() {
        self.init(policy: nil)
    }

    init(policy: LivePolicy?) {
        self.policy = policy
    }

    /// Closes `connection` with `disconnect` at `until`, or as a later call says; `user` is who
    /// the refresh hook is asked about.
    func watch(
        _ connection: WebSocketConnection, until: Date, user: String? = nil, transport: String = "websocket", closing disconnect: Disconnect = .tokenExpired
    ) {
        watched.withLock { $0[connection.id] = Watched(until: until, connection: connection, disconnect: disconnect, user: user, transport: transport) }
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
        for entry in due {
            guard entry.disconnect == .tokenExpired, let policy, let hook = policy.hooks.url(.refresh, in: policy.current.access) else {
                entry.connection.close(entry.disconnect)
                continue
            }
            refresh(entry, hook: hook, hooks: policy.hooks)
        }
    }

    /// Asks the refresh hook whether a connection whose time is up may stay: until the
    /// `expire_at` it gives, or for good without one; closed otherwise.
    private func refresh(_ entry: Watched, hook: String, hooks: BackendHooks) {
        let connection = entry.connection
        let call = BackendHooks.Call(
            kind: .refresh, client: connection.id, transport: entry.transport, address: connection.client, user: entry.user,
            headers: connection.requestHeaders)
        Task {
            let decision = await hooks.ask(call, at: hook)
            guard case .allow(let grant) = decision else { return connection.close(decision.disconnect ?? .tokenExpired) }
            guard let next = grant.expires else { return }
            guard next > Date() else { return connection.close(.tokenExpired) }
            if !connection.isClosing { watch(connection, until: next, user: entry.user, transport: entry.transport) }
        }
    }

    /// How many connections are watched.
    public var count: Int { watched.withLock { $0.count } }
}
