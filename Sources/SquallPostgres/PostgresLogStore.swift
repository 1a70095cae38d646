// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import SquallCore

/// Channel logs in one PostgreSQL database that several `squall` nodes share: a
/// ``SharedLogStore`` — a shared log, its broker and a presence registry — whose positions are
/// given out by the database, so a channel has one order and one epoch on every node,
/// surviving any node's restart.
///
/// Its parts, each on a connection of its own, all on one event loop thread of the store's
/// (never the server's):
/// - ``PostgresWriter``: appends, in batches, one `squall_append` transaction at a time, and
///   trims by count behind them.
/// - ``PostgresReader``: opens (many channels per query) and catch-up reads. Reads create
///   nothing: a channel nobody published to has no row.
/// - ``PostgresListener``: `LISTEN`s for positions and presence changes (positions, never
///   payloads).
/// - ``PostgresPresence``: this node's members, latest state per member, and the others'.
/// - ``PostgresNodes``: heartbeats, and nodes that went silent.
/// - ``PostgresJanitor``: deletes messages past their age and channels past their meta TTL in
///   small batches, on a connection and a timer of its own.
///
/// Contracts:
/// - **Outage.** A node that cannot reach the database keeps its sockets: appends fail with
///   ``StoreError`` (`store_unavailable`), opens and reads fail (the hub answers or retries),
///   and each connection is made again on its next use. When the listener is back, the hub
///   reads what every open channel missed.
/// - **Nothing blocks.** Every call returns at once or suspends its caller; no thread waits on
///   the database.
public final class PostgresLogStore: SharedLog, LogBroker, PresenceRegistry {
    /// Most messages one `squall_append` call carries.
    public static let maxBatch = PostgresWriter.maxBatch
    /// Most payload bytes one catch-up read brings (at least one message).
    public static let maxReadBytes = PostgresReader.maxReadBytes
    /// How often a node says it is alive.
    public static let heartbeat = PostgresNodes.heartbeat
    /// How long after its last heartbeat a node drops out of presence on the others.
    public static let nodeTimeout = PostgresNodes.nodeTimeout

    /// Where the database is.
    public let address: PostgresAddress
    /// This node among the database's nodes.
    public let node = UUID.random()
    private let group: MultiThreadedEventLoopGroup
    private let links: [PostgresLink]
    private let writer: PostgresWriter
    private let reader: PostgresReader
    private let listener: PostgresListener
    private let presence: PostgresPresence
    private let nodes: PostgresNodes
    private let janitor: PostgresJanitor
    /// Where history removals and commands to other nodes go: a link of their own, so that a
    /// long delete never holds up the heartbeats on the presence link.
    private let commandLink: PostgresLink
    /// Lifecycle events waiting for their webhooks, on a link of their own.
    private let outbox: PostgresOutbox

    /// Connects to the database at `address` and creates or updates Squall's tables there.
    /// - Parameters:
    ///   - retention: what the database keeps of each channel, by count, age and meta TTL (its
    ///     byte bound is each node's, in memory). Give every node the same.
    ///   - idempotency: how long a key is recognised across nodes (its `duration`).
    ///   - maxQueuedBytes: most bytes of messages waiting for the writer (default 64 MiB).
    ///   - maxOutboxEvents: most lifecycle events waiting in the outbox (default 1,000,000).
    /// - Throws: ``StoreError`` if the database cannot be reached or its schema created.
    public init(
        address: PostgresAddress,
        retention: Retention = Retention(),
        idempotency: IdempotencyWindow = IdempotencyWindow(),
        maxQueuedBytes: Int = 64 << 20,
        maxOutboxEvents: Int = 1_000_000,
        logger: Logger = Logger(label: "squall.postgres")
    ) async throws(StoreError) {
        let configuration = try address.configuration()
        self.address = address
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let link = { PostgresLink(loop: loop, configuration: configuration, logger: logger) }
        let (writing, opening, reading, upkeep, cleaning, events, commands) = (link(), link(), link(), link(), link(), link(), link())
        links = [writing, opening, reading, upkeep, cleaning, events, commands]
        let outbox = PostgresOutbox(link: events, maxEvents: maxOutboxEvents, logger: logger)
        self.outbox = outbox
        writer = PostgresWriter(
            link: writing, retention: retention, window: idempotency.duration.inSeconds, maxQueuedBytes: maxQueuedBytes,
            eventRoom: { outbox.reserve($0) }, logger: logger)
        reader = PostgresReader(opener: opening, reader: reading)
        listener = PostgresListener(node: node, loop: loop, configuration: configuration, logger: logger)
        presence = PostgresPresence(node: node, link: upkeep, logger: logger)
        nodes = PostgresNodes(node: node, link: upkeep, listener: listener)
        janitor = PostgresJanitor(link: cleaning, retention: retention, logger: logger)
        commandLink = commands
        do {
            try await Self.migrate(writing, logger: logger).get()
        } catch {
            await closeLinks()
            throw StoreError(postgres: error, doing: "set up Squall's tables at \(address)")
        }
        janitor.start()
    }

    /// Runs the schema's statements in one transaction, under an advisory lock, so that nodes
    /// starting together do not trip over each other's `CREATE OR REPLACE`.
    private static func migrate(_ link: PostgresLink, logger: Logger) -> EventLoopFuture<Void> {
        link.connection().flatMap { connection in
            let steps: [PostgresQuery] =
                ["BEGIN", "SELECT pg_advisory_xact_lock(\(PostgresSchema.migrationLock))"]
                + PostgresSchema.statements.map { PostgresQuery(unsafeSQL: $0) } + ["COMMIT"]
            var done = link.loop.makeSucceededVoidFuture()
            for step in steps {
                done = done.flatMap { connection.query(step, logger: logger).map { _ in } }
            }
            return done.flatMapError { error in
                connection.query("ROLLBACK", logger: logger).flatMapThrowing { _ in throw error }
            }
        }
    }

    // MARK: - SharedLog

    public func open(_ channels: [ChannelName], retention: Retention) async throws(StoreError) -> [ChannelName: StoredLog] {
        try await reader.open(channels, retention: retention)
    }

    public func append(
        _ draft: Draft,
        idempotencyKey: IdempotencyKey?,
        committed: @escaping @Sendable (Result<Appended, StoreError>) -> Void
    ) throws(StoreError) {
        try writer.append(PostgresWriter.Pending(draft: draft, key: idempotencyKey, committed: committed))
    }

    public func observe(_ observer: any StoreObserver) {
        writer.observer.withLock { $0 = observer }
    }

    public func read(_ channel: ChannelName, after position: StreamPosition, limit: Int, retention: Retention) async throws(StoreError) -> CatchUp {
        try await reader.read(channel, after: position, limit: limit, retention: retention)
    }

    public func removeHistory(_ channel: ChannelName) async throws(StoreError) -> StreamPosition? {
        do {
            let rows = try await commandLink.query(PostgresCommands.removeHistory(channel)).get().rows
            return try rows.first.map { row in
                let (epoch, offset, _) = try row.decode((String, Int64, String).self)
                return StreamPosition(epoch: epoch, offset: UInt64(clamping: offset))
            }
        } catch {
            throw StoreError(postgres: error, doing: "remove \(channel)'s history")
        }
    }

    /// Commits what is queued, answers every append still owed, and lets go of every
    /// connection and the store's thread.
    public func close() async {
        await writer.close()
        outbox.close()
        presence.close()
        nodes.stop()
        janitor.stop()
        _ = try? await listener.stop().get()
        await closeLinks()
    }

    private func closeLinks() async {
        for link in links { _ = try? await link.close().get() }
        try? await group.shutdownGracefully()
    }

    // MARK: - LogBroker

    public func follow(_ follower: any LogFollower) {
        listener.start(for: follower)
    }

    public func follow(_ follower: any NodeCommandFollower) {
        listener.start(for: follower)
    }

    public func send(_ command: NodeCommand) async throws(StoreError) {
        do {
            _ = try await commandLink.query(PostgresCommands.send(command, from: node)).get()
        } catch {
            throw StoreError(postgres: error, doing: "tell the other nodes")
        }
    }

    public func report(_ stats: @escaping @Sendable () -> NodeStats) {
        nodes.report(stats)
    }

    public func otherNodes() async throws(StoreError) -> [NodeReport] {
        do {
            return try await nodes.others().get()
        } catch {
            throw StoreError(postgres: error, doing: "read the other nodes")
        }
    }

    // MARK: - PresenceRegistry

    public func follow(_ follower: any PresenceFollower) {
        listener.start(for: follower)
        nodes.start(for: follower)
    }

    public func members(_ channel: ChannelName) async throws(StoreError) -> [NodeMember] {
        try await presence.members(channel, nodeTimeout: PostgresNodes.nodeTimeout)
    }

    public func announce(_ change: PresenceChange) {
        presence.announce(change)
    }
}

extension PostgresLogStore: EventOutbox {
    public var isDurable: Bool { true }

    public func record(_ events: [LifecycleEvent]) throws(StoreError) {
        try outbox.record(events)
    }

    public func recordPublished(_ event: @escaping @Sendable (Message) -> LifecycleEvent?) {
        writer.publishedEvent.withLock { $0 = event }
    }

    public func recordExpiredPresence(namespaces: Set<String>?) {
        nodes.reportExpired(namespaces: namespaces)
    }

    public func due(limit: Int, lease: Duration) async throws(StoreError) -> [OutboxEntry] {
        try await outbox.due(limit: limit, lease: lease)
    }

    public func delivered(_ id: UUID) async throws(StoreError) {
        try await outbox.delivered(id)
    }

    public func retry(_ id: UUID, deliveredTo: Set<String>, at retryAt: Date) async throws(StoreError) {
        try await outbox.retry(id, deliveredTo: deliveredTo, at: retryAt)
    }

    public func deadLetter(_ id: UUID, reason: String) async throws(StoreError) {
        try await outbox.deadLetter(id, reason: reason)
    }

    public func depth() async -> Int { outbox.depth }

    public var droppedEvents: Int { outbox.dropped }
}
