// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOCore
import PostgresNIO
import SquallCore
import Synchronization

/// This node's members as the database records them, and the other nodes' as it reads them.
///
/// Contracts: what waits to be recorded is the latest state of each member (by channel and
/// client) — never a log of changes — and a leave whose join never reached the database is no
/// change at all, so what waits is bounded by the members there are (and those whose rows are
/// still to be deleted), however many come and go while the database is away. A change that
/// could not be written is written again later unless a newer one replaced it: no current
/// member's state is ever dropped. One write is under way at a time.
final class PostgresPresence: Sendable {
    /// Most changes one write carries.
    static let maxBatch = 1000
    /// How long to wait before writing again after a failure.
    static let retryDelay = TimeAmount.seconds(1)

    private struct Key: Hashable {
        let channel: ChannelName
        let client: UUID
    }

    private struct Queue {
        var latest: [Key: PresenceChange] = [:]
        /// Members whose row may be in the database: a join was sent, and no leave since is
        /// known to have been written.
        var mayBeRecorded: Set<Key> = []
        var writing = false
        var closed = false
    }

    let node: UUID
    private let link: PostgresLink
    private let logger: Logger
    private let queue = Mutex(Queue())

    init(node: UUID, link: PostgresLink, logger: Logger) {
        self.node = node
        self.link = link
        self.logger = logger
    }

    /// Keeps `change` as its member's latest state, to be written.
    func announce(_ change: PresenceChange) {
        let wake = queue.withLock { queue -> Bool in
            guard !queue.closed else { return false }
            let key = Key(channel: change.channel, client: change.member.id)
            if case .leave = change, !queue.mayBeRecorded.contains(key) {
                queue.latest[key] = nil  // its join never left this node: nothing to undo
                return false
            }
            queue.latest[key] = change
            defer { queue.writing = true }
            return !queue.writing
        }
        if wake { link.loop.execute { self.writeNext() } }
    }

    /// How many members' states wait to be written.
    var waiting: Int { queue.withLock { $0.latest.count } }

    /// Stops writing.
    func close() {
        queue.withLock { $0.closed = true }
    }

    private func writeNext() {
        let (batch, newlyMarked) = queue.withLock { queue -> ([(Key, PresenceChange)], Set<Key>) in
            guard !queue.closed, !queue.latest.isEmpty else {
                queue.writing = false
                return ([], [])
            }
            let batch = Array(queue.latest.prefix(Self.maxBatch))
            var newlyMarked: Set<Key> = []
            for (key, change) in batch {
                queue.latest[key] = nil
                if case .join = change, queue.mayBeRecorded.insert(key).inserted { newlyMarked.insert(key) }
            }
            return (batch, newlyMarked)
        }
        guard !batch.isEmpty else { return }
        link.query(PostgresQueries.presence(batch.map(\.1), node: node)).whenComplete { [self] result in
            guard case .failure(let error) = result else {
                queue.withLock { queue in
                    for (key, change) in batch {
                        if case .leave = change, queue.latest[key] == nil { queue.mayBeRecorded.remove(key) }
                    }
                }
                return writeNext()
            }
            logger.warning("PostgreSQL presence change failed; retrying", metadata: ["error": "\(StoreError(postgres: error, doing: "record presence"))"])
            // Never sent, or refused by the server (its transaction rolled back): the joins this
            // batch marked did not happen, so a leave since is nothing to write either.
            let nothingWritten = PostgresLink.certainlyDidNothing(error)
            queue.withLock { queue in
                for (key, change) in batch where queue.latest[key] == nil { queue.latest[key] = change }
                guard nothingWritten else { return }
                for key in newlyMarked {
                    queue.mayBeRecorded.remove(key)
                    if case .leave = queue.latest[key] { queue.latest[key] = nil }
                }
            }
            link.loop.scheduleTask(in: Self.retryDelay) { self.writeNext() }
        }
    }

    /// Who is subscribed to `channel` on other live nodes (heard from within `nodeTimeout`).
    func members(_ channel: ChannelName, nodeTimeout: Double) async throws(StoreError) -> [NodeMember] {
        let name = channel.rawValue
        let found = link.query(
            """
            SELECT p.node, p.client, p.transport, p.info, p.user_id FROM squall_presence p JOIN squall_nodes n ON n.id = p.node
            WHERE p.channel = \(name) AND p.node <> \(node) AND n.seen >= extract(epoch FROM clock_timestamp()) - \(nodeTimeout)
            """
        )
        .flatMapThrowing { result in
            try result.rows.map { row in
                let (node, client, transport, info, user) = try row.decode((UUID, UUID, String, String?, String?).self)
                return NodeMember(
                    node: node, member: PresenceMember(id: client, info: info.flatMap(PostgresQueries.info), transport: transport, user: user))
            }
        }
        do {
            return try await found.get()
        } catch {
            throw StoreError(postgres: error, doing: "read who is in \(channel)")
        }
    }
}
