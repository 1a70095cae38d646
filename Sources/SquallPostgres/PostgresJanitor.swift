// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO
import SquallCore

/// Deletes what the database no longer keeps, whichever channels any node has open: messages
/// past the retention's age (only a prefix of each log, as trims do), channels whose last
/// message is older than the meta TTL (with the rows they still have: at most their retention
/// each), and the presence of nodes gone for a minute. Each statement deletes at most ``batch``
/// messages or forgets at most ``batch`` channels, so none holds locks for long; a run goes on
/// while statements come back full, up to ``maxStatements`` of each kind.
///
/// Contract: it runs every ``Retention/sweepInterval`` on a connection of its own, each run
/// after the last has finished, so a long run delays neither heartbeats nor presence, and
/// runs never pile up.
final class PostgresJanitor: Sendable {
    /// Most rows one statement deletes.
    static let batch = 1000
    /// Most statements of each kind one run sends.
    static let maxStatements = 50

    let link: PostgresLink
    let retention: Retention
    let logger: Logger
    private let stopped = NIOLockedValueBox(false)

    init(link: PostgresLink, retention: Retention, logger: Logger) {
        self.link = link
        self.retention = retention
        self.logger = logger
    }

    /// Runs every ``Retention/sweepInterval`` until ``stop()``.
    func start() {
        link.loop.scheduleTask(in: TimeAmount(retention.sweepInterval)) { [self] in
            guard !stopped.withLockedValue({ $0 }) else { return }
            run().whenComplete { [self] _ in
                if !stopped.withLockedValue({ $0 }) { start() }
            }
        }
    }

    func stop() {
        stopped.withLockedValue { $0 = true }
    }

    /// One run, on `link`'s loop; the future completes when it is done (it never fails: what it
    /// could not delete waits for the next run).
    func run() -> EventLoopFuture<Void> {
        let now = Date().timeIntervalSince1970
        let messageCutoff = now - retention.maxAge.inSeconds
        let channelCutoff = now - retention.metaTTL.inSeconds
        let expired: PostgresQuery = """
            WITH deleted AS (
                DELETE FROM squall_messages m USING (
                    SELECT channel, max("offset") AS through FROM (
                        SELECT channel, "offset" FROM squall_messages WHERE time < \(messageCutoff) ORDER BY time LIMIT \(Self.batch)
                    ) old GROUP BY channel
                ) old WHERE m.channel = old.channel AND m."offset" <= old.through
                RETURNING 1
            )
            SELECT count(*) FROM deleted
            """
        let forgotten: PostgresQuery = """
            WITH gone AS (
                DELETE FROM squall_channels WHERE name IN (
                    SELECT name FROM squall_channels WHERE updated < \(channelCutoff) LIMIT \(Self.batch) FOR UPDATE SKIP LOCKED
                ) RETURNING name
            ), rows AS (
                DELETE FROM squall_messages WHERE channel IN (SELECT name FROM gone)
            )
            SELECT count(*) FROM gone
            """
        let nodes: PostgresQuery = """
            WITH gone AS (DELETE FROM squall_nodes WHERE seen < extract(epoch FROM clock_timestamp()) - 60 RETURNING id)
            DELETE FROM squall_presence WHERE node IN (SELECT id FROM gone)
            """
        return repeatWhileFull(expired, times: Self.maxStatements)
            .flatMap { [self] in repeatWhileFull(forgotten, times: Self.maxStatements, counting: "squall_channels") }
            .flatMap { [link] in link.query(nodes).map { _ in }.recover { _ in } }
    }

    /// Runs `query`, which answers how many rows it deleted, again while that is a full batch,
    /// at most `times`.
    private func repeatWhileFull(_ query: PostgresQuery, times: Int, counting table: String = "squall_messages") -> EventLoopFuture<Void> {
        link.query(query).flatMap { [self] result -> EventLoopFuture<Void> in
            let deleted = (try? result.rows.first?.decode(Int64.self)) ?? 0
            guard times > 1, deleted >= Self.batch else { return link.loop.makeSucceededVoidFuture() }
            return repeatWhileFull(query, times: times - 1, counting: table)
        }
        .recover { [logger] error in
            logger.warning("PostgreSQL cleanup failed", metadata: ["error": "\(StoreError(postgres: error, doing: "delete from \(table)"))"])
        }
    }
}
