// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO
import SquallCore

/// The node's ear on the database: a connection that `LISTEN`s on `squall`, `squall_presence`
/// and `squall_command`, and tells the hub each position and each other node's presence change a
/// notification carries, and the server each command (``PostgresCommands``).
///
/// Contracts: notifications carry `EPOCH OFFSET CHANNEL` (PostgresSchema), never payloads.
/// When the connection is lost it is made again, retrying every ``retryDelay``; once `LISTEN`
/// holds again the hub is told to ``LogFollower/resynchronize()`` and
/// ``PresenceFollower/resynchronizePresence()``, because notifications sent while it was gone
/// are lost for good (PostgreSQL keeps none for absent listeners).
final class PostgresListener: Sendable {
    /// The notification channel every node listens on and every append notifies.
    static let channel = "squall"
    /// The one presence changes notify.
    static let presenceChannel = "squall_presence"
    /// How long to wait before connecting again.
    static let retryDelay = TimeAmount.milliseconds(500)

    private struct State {
        weak var logs: (any LogFollower)?
        weak var presence: (any PresenceFollower)?
        weak var commands: (any NodeCommandFollower)?
        var started = false
        var connection: PostgresConnection?
        var stopped = false
    }

    /// This node: its own presence notifications are not news to it.
    private let node: UUID

    private let loop: any EventLoop
    private let configuration: PostgresConnection.Configuration
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    init(node: UUID, loop: any EventLoop, configuration: PostgresConnection.Configuration, logger: Logger) {
        self.node = node
        self.loop = loop
        self.configuration = configuration
        self.logger = logger
    }

    /// Tells `follower`, held weakly, of positions; listening starts with the first follower.
    func start(for follower: any LogFollower) {
        if start({ $0.logs = follower }) { loop.execute { self.connect() } }
    }

    /// Tells `follower`, held weakly, of other nodes' presence; listening starts with the first
    /// follower.
    func start(for follower: any PresenceFollower) {
        if start({ $0.presence = follower }) { loop.execute { self.connect() } }
    }

    /// Tells `follower`, held weakly, the commands other nodes send; listening starts with the
    /// first follower.
    func start(for follower: any NodeCommandFollower) {
        if start({ $0.commands = follower }) { loop.execute { self.connect() } }
    }

    /// Records a follower; `true` if listening should start now.
    private func start(_ record: (inout State) -> Void) -> Bool {
        state.withLockedValue { state in
            record(&state)
            defer { state.started = true }
            return !state.started
        }
    }

    /// Stops listening and closes the connection.
    func stop() -> EventLoopFuture<Void> {
        let connection = state.withLockedValue { state -> PostgresConnection? in
            state.stopped = true
            return state.connection
        }
        return connection?.close().recover { _ in } ?? loop.makeSucceededVoidFuture()
    }

    private func connect() {
        guard !state.withLockedValue({ $0.stopped }) else { return }
        PostgresConnection.connect(on: loop, configuration: configuration, id: 0, logger: logger).whenComplete { result in
            switch result {
            case .failure(let error):
                self.logger.debug("cannot listen on PostgreSQL yet", metadata: ["error": "\(StoreError(postgres: error, doing: "connect"))"])
                self.retry()
            case .success(let connection):
                self.listen(on: connection)
            }
        }
    }

    private func listen(on connection: PostgresConnection) {
        let stopped = state.withLockedValue { state in
            state.connection = connection
            return state.stopped
        }
        guard !stopped else {
            connection.close(promise: nil)
            return
        }
        connection.addListener(channel: Self.channel) { [weak self] _, notification in
            self?.notified(notification.payload)
        }
        connection.addListener(channel: Self.presenceChannel) { [weak self] _, notification in
            self?.presenceChanged(notification.payload)
        }
        connection.addListener(channel: PostgresCommands.channel) { [weak self] _, notification in
            self?.commanded(notification.payload)
        }
        connection.closeFuture.whenComplete { _ in
            self.state.withLockedValue { $0.connection = nil }
            self.retry()
        }
        connection.query("LISTEN squall", logger: logger).flatMap { _ in
            connection.query("LISTEN squall_presence", logger: self.logger)
        }
        .flatMap { _ in connection.query("LISTEN squall_command", logger: self.logger) }
        .whenComplete { result in
            switch result {
            case .success:
                let (logs, presence) = self.state.withLockedValue { ($0.logs, $0.presence) }
                logs?.resynchronize()
                presence?.resynchronizePresence()
            case .failure:
                connection.close(promise: nil)
            }
        }
    }

    /// Proves the connection with a query: one that fails, or is not answered within
    /// ``probeTimeout``, is closed, so that it is made again (a connection that died without
    /// a FIN would otherwise look open for ever, and its notifications be lost unnoticed).
    func probe() {
        guard let connection = state.withLockedValue({ $0.connection }) else { return }
        let answered = NIOLockedValueBox(false)
        connection.query("SELECT 1", logger: logger).whenComplete { result in
            answered.withLockedValue { $0 = true }
            if case .failure = result { connection.close(promise: nil) }
        }
        loop.scheduleTask(in: Self.probeTimeout) {
            if !answered.withLockedValue({ $0 }) { connection.close(promise: nil) }
        }
    }

    /// How long a probe may wait for its answer.
    static let probeTimeout = TimeAmount.seconds(5)

    private func retry() {
        guard !state.withLockedValue({ $0.stopped }) else { return }
        loop.scheduleTask(in: Self.retryDelay) { self.connect() }
    }

    /// `EPOCH OFFSET CHANNEL`; anything else is ignored.
    private func notified(_ payload: String) {
        let parts = payload.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let offset = UInt64(parts[1]), let channel = try? ChannelName(String(parts[2])) else { return }
        state.withLockedValue { $0.logs }?.advanced(channel, to: StreamPosition(epoch: String(parts[0]), offset: offset))
    }
}

extension PostgresListener {
    /// `J NODE CHANNEL CLIENT TRANSPORT USER INFO` or `L NODE CHANNEL CLIENT`, from another
    /// node; this node's own, and anything else, are ignored.
    private func presenceChanged(_ payload: String) {
        let parts = payload.split(separator: " ", maxSplits: 6, omittingEmptySubsequences: false)
        guard parts.count >= 4, let node = UUID(uuidString: String(parts[1])), let channel = try? ChannelName(String(parts[2])),
            let client = UUID(uuidString: String(parts[3]))
        else { return }
        guard node != self.node, let follower = state.withLockedValue({ $0.presence }) else { return }
        switch parts[0] {
        case "J" where parts.count == 7:
            let info = parts[6].isEmpty ? nil : PostgresQueries.info(String(parts[6]))
            let member = PresenceMember(id: client, info: info, transport: String(parts[4]), user: PostgresQueries.user(hex: parts[5]))
            follower.joined(channel, member, on: node)
        case "L":
            follower.left(channel, client: client, on: node)
        default:
            return
        }
    }
}

extension PostgresListener {
    /// A history removal (for the log follower) or another node's command.
    private func commanded(_ payload: String) {
        switch PostgresCommands.notice(payload, node: node) {
        case .historyRemoved(let channel, let position):
            state.withLockedValue { $0.logs }?.historyRemoved(channel, through: position)
        case .command(let command):
            state.withLockedValue { $0.commands }?.received(command)
        case nil:
            return
        }
    }
}

extension PostgresConnection {
    fileprivate func close(promise: EventLoopPromise<Void>?) {
        close().whenComplete { _ in promise?.succeed() }
    }
}
