// SPDX-License-Identifier: Apache-2.0

import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO
import SquallCore

/// One connection to the database, made again on first use after it was lost: a store's writer
/// or reader. Every query runs on the link's event loop, one after another in the order asked.
///
/// Contracts:
/// - **No statement outlives its caller's patience.** The connection asks the server to cancel
///   any statement that runs longer than ``statementTimeout`` (`statement_timeout`), so a
///   query given up on is not left running, holding locks, on the server.
/// - **A silent database is given up on.** While queries wait, a connection that answers none
///   of them for ``queryTimeout`` is closed, failing every query on it, and the next query
///   connects again: a database that stops answering without closing (a frozen host, a lost
///   route) would otherwise hold the link, and every caller waiting on it, until TCP gives up.
///   A long queue that keeps being answered is never cut.
/// - A query that could not be sent, for want of a connection, fails with ``NotConnected``: it
///   certainly did nothing.
final class PostgresLink: Sendable {
    /// How long a connection with queries waiting may answer none before it is given up.
    static let queryTimeout = TimeAmount.seconds(10)
    /// Longest the server runs one statement of a link's.
    static let statementTimeout = TimeAmount.seconds(8)

    /// A query was never sent: no connection could be made (or the link was closed).
    struct NotConnected: Error {
        let underlying: any Error
    }

    /// Whether a query that failed with `error` certainly changed nothing: it was never sent,
    /// or the server refused it (its transaction rolled back). Otherwise — a connection lost
    /// with the query under way — it may have committed before the answer was lost.
    static func certainlyDidNothing(_ error: any Error) -> Bool {
        error is NotConnected || (error as? PSQLError)?.serverInfo != nil
    }

    private enum State {
        case closed
        case connecting(EventLoopFuture<PostgresConnection>)
        case open(PostgresConnection)
    }

    /// Queries asked and not yet answered, and since when the connection has answered none.
    private struct Progress {
        var waiting = 0
        var quietSince = NIODeadline.now()
        var watchdog: Scheduled<Void>?
    }

    let loop: any EventLoop
    private let configuration: PostgresConnection.Configuration
    private let logger: Logger
    private let queryTimeout: TimeAmount
    private let state: NIOLoopBoundBox<State>
    private let progress: NIOLoopBoundBox<Progress>
    /// Set by ``close()``: from then on queries fail at once, without touching the loop, which
    /// may already be shut down (work submitted to it then would never run).
    private let closed = NIOLockedValueBox(false)
    private static let ids = NIOLockedValueBox(0)

    /// - Parameters:
    ///   - statementTimeout: the server's `statement_timeout` for this link's connections;
    ///     `nil` leaves the server's own.
    init(
        loop: any EventLoop,
        configuration: PostgresConnection.Configuration,
        logger: Logger,
        queryTimeout: TimeAmount = PostgresLink.queryTimeout,
        statementTimeout: TimeAmount? = PostgresLink.statementTimeout
    ) {
        var configuration = configuration
        if let statementTimeout {
            configuration.options.additionalStartupParameters.append(("statement_timeout", "\(statementTimeout.nanoseconds / 1_000_000)"))
        }
        self.loop = loop
        self.configuration = configuration
        self.logger = logger
        self.queryTimeout = queryTimeout
        self.state = NIOLoopBoundBox.makeBoxSendingValue(State.closed, as: State.self, eventLoop: loop)
        self.progress = NIOLoopBoundBox.makeBoxSendingValue(Progress(), as: Progress.self, eventLoop: loop)
    }

    /// The connection, connecting first if there is none; ``NotConnected`` if none can be had.
    func connection() -> EventLoopFuture<PostgresConnection> {
        guard !closed.withLockedValue({ $0 }) else { return loop.makeFailedFuture(NotConnected(underlying: ChannelError.ioOnClosedChannel)) }
        return loop.flatSubmit { [self] in
            // Checked again on the loop: `close()` may have come in between.
            guard !closed.withLockedValue({ $0 }) else { return loop.makeFailedFuture(NotConnected(underlying: ChannelError.ioOnClosedChannel)) }
            switch state.value {
            case .open(let connection) where !connection.isClosed:
                return loop.makeSucceededFuture(connection)
            case .connecting(let future):
                return future
            case .open, .closed:
                let id = Self.ids.withLockedValue { id in
                    id += 1
                    return id
                }
                let future = PostgresConnection.connect(on: loop, configuration: configuration, id: id, logger: logger)
                    .flatMapErrorThrowing { error in throw NotConnected(underlying: error) }
                state.value = .connecting(future)
                future.whenComplete { [self] result in
                    switch result {
                    case .success(let connection): state.value = .open(connection)
                    case .failure: state.value = .closed
                    }
                }
                return future
            }
        }
    }

    /// Runs `query` and collects its rows.
    func query(_ query: PostgresQuery) -> EventLoopFuture<PostgresQueryResult> {
        connection().flatMap { [self] connection in
            asked()
            let result = connection.query(query, logger: logger)
            result.whenComplete { [self] _ in answered() }
            return result
        }
    }

    /// Closes the connection, if there is one, for good.
    func close() -> EventLoopFuture<Void> {
        closed.withLockedValue { $0 = true }
        return loop.flatSubmit { [self] in
            progress.value.watchdog?.cancel()
            guard case .open(let connection) = state.value else { return loop.makeSucceededVoidFuture() }
            state.value = .closed
            return connection.close().recover { _ in }
        }
    }

    // MARK: - The watchdog (on the loop)

    private func asked() {
        if progress.value.waiting == 0 { progress.value.quietSince = .now() }
        progress.value.waiting += 1
        if progress.value.watchdog == nil { watch(until: progress.value.quietSince + queryTimeout) }
    }

    private func answered() {
        progress.value.waiting -= 1
        progress.value.quietSince = .now()
        if progress.value.waiting == 0 {
            progress.value.watchdog?.cancel()
            progress.value.watchdog = nil
        }
    }

    private func watch(until deadline: NIODeadline) {
        progress.value.watchdog = loop.scheduleTask(deadline: deadline) { [self] in
            progress.value.watchdog = nil
            guard progress.value.waiting > 0 else { return }
            let quietUntil = progress.value.quietSince + queryTimeout
            guard quietUntil <= .now() else { return watch(until: quietUntil) }
            guard case .open(let connection) = state.value else { return }
            logger.warning("PostgreSQL answered nothing in time; connecting again", metadata: ["timeout": "\(queryTimeout)"])
            _ = connection.close() as EventLoopFuture<Void>  // at once: the channel, and every query on it, fails
        }
    }
}

extension StoreError {
    /// A PostgreSQL failure, with what the server said when it said something.
    init(postgres error: any Error, doing what: String) {
        if let notConnected = error as? PostgresLink.NotConnected {
            self.init(postgres: notConnected.underlying, doing: what)
        } else if let psql = error as? PSQLError, let message = psql.serverInfo?[.message] {
            self.init("PostgreSQL could not \(what): \(message)")
        } else if let psql = error as? PSQLError {
            self.init("PostgreSQL could not \(what): \(psql.code)\(psql.underlying.map { " (\($0))" } ?? "")")
        } else {
            self.init("PostgreSQL could not \(what): \(error)")
        }
    }
}
