import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO
import SquallCore

/// One connection to the database, made again on first use after it was lost: a store's writer
/// or reader. Every query runs on the link's event loop, one after another in the order asked.
final class PostgresLink: Sendable {
    private enum State {
        case closed
        case connecting(EventLoopFuture<PostgresConnection>)
        case open(PostgresConnection)
    }

    let loop: any EventLoop
    private let configuration: PostgresConnection.Configuration
    private let logger: Logger
    private let state: NIOLoopBoundBox<State>
    private static let ids = NIOLockedValueBox(0)

    init(loop: any EventLoop, configuration: PostgresConnection.Configuration, logger: Logger) {
        self.loop = loop
        self.configuration = configuration
        self.logger = logger
        self.state = NIOLoopBoundBox.makeBoxSendingValue(State.closed, as: State.self, eventLoop: loop)
    }

    /// The connection, connecting first if there is none.
    func connection() -> EventLoopFuture<PostgresConnection> {
        loop.flatSubmit { [self] in
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

    /// Runs `query` and collects its rows.
    func query(_ query: PostgresQuery) -> EventLoopFuture<PostgresQueryResult> {
        connection().flatMap { [logger] connection in connection.query(query, logger: logger) }
    }

    /// Closes the connection, if there is one.
    func close() -> EventLoopFuture<Void> {
        loop.flatSubmit { [self] in
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
