import Foundation
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO
import SquallCore

/// The node's heartbeat: every ``heartbeat`` it says it is alive in `squall_nodes`, tells its
/// hub which other nodes stopped saying so (their members leave presence here), and proves the
/// listener's connection.
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
        let done = link.query(
            """
            INSERT INTO squall_nodes (id, seen) VALUES (\(node), extract(epoch FROM clock_timestamp()))
            ON CONFLICT (id) DO UPDATE SET seen = EXCLUDED.seen, expired = false
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
