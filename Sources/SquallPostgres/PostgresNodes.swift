// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO
import SquallCore

/// The node's heartbeat: every ``heartbeat`` it says it is alive in `squall_nodes`, tells its
/// hub which other nodes stopped saying so (their members leave presence here), and proves the
/// listener's connection. Each beat carries the node's ``NodeStats``, once the server reports
/// them, for the other nodes' `info`.
///
/// Contracts: a node silent for ``nodeTimeout`` drops out of every other node's presence; a
/// node whose own beats failed or came late for that long has been dropped by the others, so it
/// has its hub record its members again (``PresenceFollower/resynchronizePresence()``).
final class PostgresNodes: Sendable {
    /// How often a node says it is alive.
    static let heartbeat = TimeAmount.seconds(2)
    /// How long after its last heartbeat a node, and everyone subscribed through it, drops out
    /// of presence on the other nodes.
    static let nodeTimeout = 10.0

    let node: UUID
    private let link: PostgresLink
    private let listener: PostgresListener
    /// When the last heartbeat that landed was sent.
    private let lastBeat = NIOLockedValueBox(NIODeadline.now())
    private let stopped = NIOLockedValueBox(false)
    /// Whether a beat records `presence_expired` events for the nodes it finds gone, and of
    /// which namespaces (`nil`: all); `.none` until webhooks ask for them.
    private let expiredEvents = NIOLockedValueBox<Set<String>??>(.none)
    /// What each beat says of this node, once ``report(_:)`` was called.
    private let stats = NIOLockedValueBox<(@Sendable () -> NodeStats)?>(nil)

    /// From now on each beat carries `stats()`.
    func report(_ stats: @escaping @Sendable () -> NodeStats) {
        self.stats.withLockedValue { $0 = stats }
    }

    /// The other nodes that beat within ``nodeTimeout``, with the stats of their last beat.
    func others() -> EventLoopFuture<[NodeReport]> {
        link.query(
            """
            SELECT id, stats::text FROM squall_nodes
            WHERE id <> \(node) AND NOT expired AND seen >= extract(epoch FROM clock_timestamp()) - \(Self.nodeTimeout)
            ORDER BY id
            """
        )
        .flatMapThrowing { result in
            try result.rows.map { row in
                let (id, stats) = try row.decode((UUID, String?).self)
                return NodeReport(node: id, stats: stats.flatMap { try? JSONDecoder().decode(NodeStats.self, from: Data($0.utf8)) })
            }
        }
    }

    /// From now on a beat records a `presence_expired` event for each channel a gone node's
    /// members were on: once, by whichever node marks it gone first.
    func reportExpired(namespaces: Set<String>?) {
        expiredEvents.withLockedValue { $0 = .some(namespaces) }
    }

    init(node: UUID, link: PostgresLink, listener: PostgresListener) {
        self.node = node
        self.link = link
        self.listener = listener
    }

    /// Starts beating for `follower` until ``stop()``.
    func start(for follower: any PresenceFollower) {
        beat(for: follower)
    }

    func stop() {
        stopped.withLockedValue { $0 = true }
    }

    private func beat(for follower: any PresenceFollower) {
        let node = self.node
        let timeout = Self.nodeTimeout
        listener.probe()
        // A few dozen bytes every beat: JSON, so that a figure added later needs no migration.
        let stats = self.stats.withLockedValue { $0 }.flatMap { try? JSONEncoder().encode($0()) }.map { String(decoding: $0, as: UTF8.self) }
        let done = link.query(
            """
            INSERT INTO squall_nodes (id, seen, stats) VALUES (\(node), extract(epoch FROM clock_timestamp()), \(stats)::jsonb)
            ON CONFLICT (id) DO UPDATE SET seen = EXCLUDED.seen, expired = false, stats = EXCLUDED.stats
            """
        )
        .flatMap { [link, expiredEvents] _ -> EventLoopFuture<Void> in
            guard case .some(let namespaces) = expiredEvents.withLockedValue({ $0 }) else { return link.loop.makeSucceededVoidFuture() }
            return link.query(PostgresQueries.expiredPresence(timeout: timeout, namespaces: namespaces)).map { _ in }
        }
        .flatMap { [link] _ in
            link.query("SELECT id FROM squall_nodes WHERE seen < extract(epoch FROM clock_timestamp()) - \(timeout)")
        }
        .flatMapThrowing { result -> Set<UUID> in
            try Set(result.rows.map { try $0.decode(UUID.self) })
        }
        let started = NIODeadline.now()
        done.whenComplete { [weak follower, self] result in
            if case .success(let gone) = result {
                follower?.nodesGone(gone)
                // Beats that failed or came late for as long as other nodes wait: they have
                // taken this node's members out of presence; announce them again.
                let late = lastBeat.withLockedValue { last in
                    defer { last = started }
                    return started - last > .seconds(Int64(Self.nodeTimeout))
                }
                if late { follower?.resynchronizePresence() }
            }
            guard !stopped.withLockedValue({ $0 }), follower != nil else { return }
            link.loop.scheduleTask(in: Self.heartbeat) { [weak follower] in
                if let follower { self.beat(for: follower) }
            }
        }
    }
}
