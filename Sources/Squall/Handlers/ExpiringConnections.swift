// SPDX-License-Identifier: Apache-2.0

import Foundation
import SquallCore
import Synchronization

/// The live WebSocket connections whose time runs out, each closed by a sweep once a second
/// (``sweep(now:)``) rather than by a timer of its own: a timer per connection cost a handshake
/// more than verifying its token. A connection has two deadlines: its own (its connection
/// token's, or the connect hook's `expire_at`), which the refresh hook may renew, and its
/// channels' (the first of its subscription tokens to expire), which nothing but a fresh
/// subscription token renews. Either closes it with 4002 (``Disconnect/tokenExpired``). (Also a
/// `/ws` connection that owes its `connect`, closed with 4001 when its time is up.)
///
/// Contracts: a connection is closed at most a sweep after its time; watching it again
/// replaces its deadlines; a closed connection is forgotten, so the table holds only open
/// connections. The refresh hook is asked only when the connection's own deadline is the one
/// that came.
public final class ExpiringConnections: Sendable {
    /// Told the connection's new deadline (`nil`: none) when the refresh hook renewed it.
    typealias Renewal = @Sendable (Date?) -> Void

    private struct Watched {
        /// The connection's own deadline, which the refresh hook may renew.
        let own: Date?
        /// Its channels' subscription tokens' first expiry, which it may not.
        let tokens: Date?
        let connection: WebSocketConnection
        let disconnect: Disconnect
        /// Whom the refresh hook is told about, and over what.
        let user: String?
        let transport: String
        let renewed: Renewal?

        var until: Date? { [own, tokens].compactMap { $0 }.min() }
        /// Whether the deadline that comes first is the connection's own.
        var renewable: Bool { own != nil && own == until && disconnect == .tokenExpired }
    }

    private let watched = Mutex<[UUID: Watched]>([:])
    /// Where the refresh hook is found.
    private let policy: LivePolicy?

    public convenience init() {
        self.init(policy: nil)
    }

    init(policy: LivePolicy?) {
        self.policy = policy
    }

    /// Closes `connection` with `disconnect` at the first of `own` and `tokens`, or as a later
    /// call says; with neither, stops watching it. `user` and `transport` are what the refresh
    /// hook is told; `renewed` is told the new deadline it gives.
    func watch(
        _ connection: WebSocketConnection, own: Date?, tokens: Date? = nil, user: String? = nil, transport: String = "websocket",
        closing disconnect: Disconnect = .tokenExpired, renewed: Renewal? = nil
    ) {
        let entry = Watched(own: own, tokens: tokens, connection: connection, disconnect: disconnect, user: user, transport: transport, renewed: renewed)
        watched.withLock { $0[connection.id] = entry.until == nil ? nil : entry }
    }

    /// Stops watching `connection` (it closed).
    func forget(_ connection: WebSocketConnection) {
        _ = watched.withLock { $0.removeValue(forKey: connection.id) }
    }

    /// Closes every connection whose time has come, or asks the refresh hook about it.
    public func sweep(now: Date = Date()) {
        let due = watched.withLock { watched in
            let due = watched.values.filter { ($0.until ?? .distantFuture) <= now }
            for entry in due { watched[entry.connection.id] = nil }
            return due
        }
        for entry in due {
            guard entry.renewable, let policy, let hook = policy.hooks.url(.refresh, in: policy.current.access) else {
                entry.connection.close(entry.disconnect)
                continue
            }
            refresh(entry, hook: hook, hooks: policy.hooks)
        }
    }

    /// Asks the refresh hook whether a connection whose own time is up may stay: until the
    /// `expire_at` it gives, or for good without one (its subscription tokens' deadline still
    /// stands); closed otherwise.
    private func refresh(_ entry: Watched, hook: String, hooks: BackendHooks) {
        let connection = entry.connection
        let call = BackendHooks.Call(
            kind: .refresh, client: connection.id, transport: entry.transport, address: connection.client, user: entry.user,
            headers: connection.requestHeaders)
        Task {
            let decision = await hooks.ask(call, at: hook)
            guard case .allow(let grant) = decision else {
                if case .deny = decision { connection[Denied.self] = true }
                return connection.close(decision.disconnect ?? .tokenExpired)
            }
            if let next = grant.expires, next <= Date() { return connection.close(.tokenExpired) }
            entry.renewed?(grant.expires)
            guard !connection.isClosing else { return }
            watch(
                connection, own: grant.expires, tokens: entry.tokens, user: entry.user, transport: entry.transport, closing: entry.disconnect,
                renewed: entry.renewed)
            // Closed meanwhile: its close forgot it before this watch; forget it again.
            if connection.isClosing { forget(connection) }
        }
    }

    /// How many connections are watched.
    public var count: Int { watched.withLock { $0.count } }
}

/// Set on a connection a backend's hook refused, so that its `disconnected` event says
/// `denied` whatever close code the backend chose.
enum Denied: ConnectionStorageKey {
    typealias Value = Bool
}
