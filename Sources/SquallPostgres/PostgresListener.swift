import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO
import SquallCore

/// The node's ear on the database: a connection that `LISTEN`s on `squall` and tells the
/// follower (the hub) each position a notification carries.
///
/// Contracts: notifications carry `EPOCH OFFSET CHANNEL` (PostgresSchema), never payloads.
/// When the connection is lost it is made again, retrying every ``retryDelay``; once `LISTEN`
/// holds again the follower is told to ``LogFollower/resynchronize()``, because notifications
/// sent while it was gone are lost for good (PostgreSQL keeps none for absent listeners).
final class PostgresListener: Sendable {
    /// The notification channel every node listens on and every append notifies.
    static let channel = "squall"
    /// The one presence changes notify.
    static let presenceChannel = "squall_presence"
    /// How long to wait before connecting again.
    static let retryDelay = TimeAmount.milliseconds(500)

    private struct State {
        weak var follower: (any LogFollower)?
        var node: UUID?
        var connection: PostgresConnection?
        var stopped = false
    }

    private let loop: any EventLoop
    private let configuration: PostgresConnection.Configuration
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    init(loop: any EventLoop, configuration: PostgresConnection.Configuration, logger: Logger) {
        self.loop = loop
        self.configuration = configuration
        self.logger = logger
    }

    /// Starts listening for `follower`, held weakly.
    func start(for follower: any LogFollower, node: UUID) {
        state.withLockedValue { state in
            state.follower = follower
            state.node = node
        }
        loop.execute { self.connect() }
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
        connection.closeFuture.whenComplete { _ in
            self.state.withLockedValue { $0.connection = nil }
            self.retry()
        }
        connection.query("LISTEN squall", logger: logger).flatMap { _ in
            connection.query("LISTEN squall_presence", logger: self.logger)
        }
        .whenComplete { result in
            switch result {
            case .success:
                self.state.withLockedValue { $0.follower }?.resynchronize()
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
        state.withLockedValue { $0.follower }?.advanced(channel, to: StreamPosition(epoch: String(parts[0]), offset: offset))
    }
}

extension PostgresListener {
    /// `J NODE CHANNEL CLIENT TRANSPORT INFO` or `L NODE CHANNEL CLIENT`, from another node;
    /// this node's own, and anything else, are ignored.
    private func presenceChanged(_ payload: String) {
        let parts = payload.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: false)
        guard parts.count >= 4, let node = UUID(uuidString: String(parts[1])), let channel = try? ChannelName(String(parts[2])),
            let client = UUID(uuidString: String(parts[3]))
        else { return }
        let (follower, me) = state.withLockedValue { ($0.follower, $0.node) }
        guard node != me, let follower else { return }
        switch parts[0] {
        case "J" where parts.count == 6:
            let info = parts[5].isEmpty ? nil : PostgresLogStore.info(String(parts[5]))
            follower.joined(channel, PresenceMember(id: client, info: info, transport: String(parts[4])), on: node)
        case "L":
            follower.left(channel, client: client, on: node)
        default:
            return
        }
    }
}

extension PostgresConnection {
    fileprivate func close(promise: EventLoopPromise<Void>?) {
        close().whenComplete { _ in promise?.succeed() }
    }
}
