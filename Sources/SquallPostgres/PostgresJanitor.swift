import Foundation
import Logging
import NIOCore
import PostgresNIO
import SquallCore

/// Deletes what the database no longer keeps, whichever channels any node has open: messages
/// past the retention's age (only a prefix of each log, as trims do), channels whose last
/// message is older than the meta TTL (with any rows they still have), and the presence of
/// nodes gone for a minute. Each statement deletes at most ``batch`` rows, so none holds locks
/// for long; a run goes on while statements come back full, up to ``maxStatements``.
struct PostgresJanitor: Sendable {
    /// Most rows one statement deletes.
    static let batch = 1000
    /// Most statements of each kind one run sends.
    static let maxStatements = 50

    let link: PostgresLink
    let retention: Retention
    let logger: Logger

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
            .flatMap { repeatWhileFull(forgotten, times: Self.maxStatements, counting: "squall_channels") }
            .flatMap { link.query(nodes).map { _ in }.recover { _ in } }
    }

    /// Runs `query`, which answers how many rows it deleted, again while that is a full batch,
    /// at most `times`.
    private func repeatWhileFull(_ query: PostgresQuery, times: Int, counting table: String = "squall_messages") -> EventLoopFuture<Void> {
        link.query(query).flatMap { result -> EventLoopFuture<Void> in
            let deleted = (try? result.rows.first?.decode(Int64.self)) ?? 0
            guard times > 1, deleted >= Self.batch else { return link.loop.makeSucceededVoidFuture() }
            return repeatWhileFull(query, times: times - 1, counting: table)
        }
        .recover { error in
            logger.warning("PostgreSQL cleanup failed", metadata: ["error": "\(StoreError(postgres: error, doing: "delete from \(table)"))"])
        }
    }
}
