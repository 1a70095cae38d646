// SPDX-License-Identifier: Apache-2.0

import SquallCore
import Synchronization

/// A client of a known user that the server API can end or take off a channel: a WebSocket
/// connection, or an SSE stream.
protocol UserSession: AnyObject, Sendable {
    /// Ends the session with `disconnect`.
    func disconnect(_ disconnect: Disconnect)
    /// Takes the session off `channel`; whether it was on it.
    func unsubscribe(from channel: ChannelName) -> Bool
}

/// A WebSocket handler that can take one of its connections off a channel without closing it
/// (`/ws`), or knows that the connection is its channel (`/msg`).
protocol ChannelLeaving: Sendable {
    /// Takes `connection` off `channel`; whether it was on it.
    func unsubscribe(_ connection: WebSocketConnection, from channel: ChannelName) -> Bool
}

/// The live sessions of identified users, by user id: what the server API's `disconnect` and
/// `unsubscribe` act on, and what other nodes' commands reach (``NodeCommandFollower``).
///
/// Contracts: holds only open sessions (each is removed as it ends), so it is bounded by the
/// connection limits; a session is acted on outside the table's lock, so closing one never
/// waits on another.
public final class ConnectedUsers: NodeCommandFollower {
    private let users = Mutex<[String: [ObjectIdentifier: any UserSession]]>([:])

    public init() {}

    /// Records `session` as `user`'s.
    func add(_ session: any UserSession, user: String) {
        users.withLock { $0[user, default: [:]][ObjectIdentifier(session)] = session }
    }

    /// Forgets `session` (it ended).
    func remove(_ session: any UserSession, user: String) {
        users.withLock { users in
            users[user]?[ObjectIdentifier(session)] = nil
            if users[user]?.isEmpty == true { users[user] = nil }
        }
    }

    /// Ends every session of `user` with `disconnect`.
    /// - Returns: how many there were.
    @discardableResult
    public func disconnect(user: String, with disconnect: Disconnect) -> Int {
        let sessions = users.withLock { $0[user].map { Array($0.values) } ?? [] }
        for session in sessions { session.disconnect(disconnect) }
        return sessions.count
    }

    /// Takes every session of `user` off `channel`.
    /// - Returns: how many were on it.
    @discardableResult
    public func unsubscribe(user: String, from channel: ChannelName) -> Int {
        let sessions = users.withLock { $0[user].map { Array($0.values) } ?? [] }
        return sessions.reduce(0) { $0 + ($1.unsubscribe(from: channel) ? 1 : 0) }
    }

    /// How many users have a session.
    public var count: Int { users.withLock { $0.count } }

    /// Another node's command, carried out on this node's sessions.
    public func received(_ command: NodeCommand) {
        switch command {
        case .disconnect(let user, let disconnect): self.disconnect(user: user, with: disconnect)
        case .unsubscribe(let user, let channel): unsubscribe(user: user, from: channel)
        }
    }
}

extension WebSocketConnection: UserSession {
    func disconnect(_ disconnect: Disconnect) {
        self[Kicked.self] = true
        close(disconnect)
    }

    func unsubscribe(from channel: ChannelName) -> Bool {
        (mounted.handler as? any ChannelLeaving)?.unsubscribe(self, from: channel) ?? false
    }
}
