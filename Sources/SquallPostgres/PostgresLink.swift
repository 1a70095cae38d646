import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO
import SquallCore

/// One connection to the database, made again on first use after it was lost: a store's writer
/// or reader. Every query runs on the link's event loop, one after another in the order asked.
///
/// Contract: a query not answered within ``queryTimeout`` of being asked closes the connection,
/// failing it and every query queued behind it, and the next query connects again. A database
/// that stops answering without closing (a frozen host, a lost route) would otherwise hold the
/// link, and every caller waiting on it, until TCP gives up: minutes.
final class PostgresLink: Sendable {
    /// How long a query may go unanswered before its connection is given up.
    static let queryTimeout = TimeAmount.seconds(10)

    private enum State {
        case closed
        case connecting(EventLoopFuture<PostgresConnection>)
        case open(PostgresConnection)
    }

    let loop: any EventLoop
    private let configuration: PostgresConnection.Configuration
    private let logger: Logger
    private let queryTimeout: TimeAmount
    private let state: NIOLoopBoundBox<State>
    /// Set by ``close()``: from then on queries fail at once, without touching the loop, which
    /// may already be shut down (work submitted to it then would never run).
    private let closed = NIOLockedValueBox(false)
    private static let ids = NIOLockedValueBox(0)

    init(loop: any EventLoop, configuration: PostgresConnection.Configuration, logger: Logger, queryTimeout: TimeAmount = PostgresLink.queryTimeout) {
        self.loop = loop
        self.configuration = configuration
        self.logger = logger
        self.queryTimeout = queryTimeout
        self.state = NIOLoopBoundBox.makeBoxSendingValue(State.closed, as: State.self, eventLoop: loop)
    }

    /// The connection, connecting first if there is none.
    func connection() -> EventLoopFuture<PostgresConnection> {
        guard !closed.withLockedValue({ $0 }) else { return loop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
        return loop.flatSubmit { [self] in
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

    /// Runs `query` and collects its rows; fails if the database does not answer within
    /// ``queryTimeout``.
    func query(_ query: PostgresQuery) -> EventLoopFuture<PostgresQueryResult> {
        connection().flatMap { [logger, loop, queryTimeout] connection in
            let result = connection.query(query, logger: logger)
            let watchdog = loop.scheduleTask(in: queryTimeout) {
                logger.warning("PostgreSQL did not answer a query in time; connecting again", metadata: ["timeout": "\(queryTimeout)"])
                _ = connection.close() as EventLoopFuture<Void>  // at once: the channel, and every query on it, fails
            }
            result.whenComplete { _ in watchdog.cancel() }
            return result
        }
    }

    /// Closes the connection, if there is one, for good.
    func close() -> EventLoopFuture<Void> {
        closed.withLockedValue { $0 = true }
        return loop.flatSubmit { [self] in
            guard case .open(let connection) = state.value else { return loop.makeSucceededVoidFuture() }
            state.value = .closed
            return connection.close().recover { _ in }
        }
    }
}

extension StoreError {
    /// A PostgreSQL failure, with what the server said when it said something.
    init(postgres error: any Error, doing what: String) {
        if let psql = error as? PSQLError, let message = psql.serverInfo?[.message] {
            self.init("PostgreSQL could not \(what): \(message)")
        } else if let psql = error as? PSQLError {
            self.init("PostgreSQL could not \(what): \(psql.code)\(psql.underlying.map { " (\($0))" } ?? "")")
        } else {
            self.init("PostgreSQL could not \(what): \(error)")
        }
    }
}
