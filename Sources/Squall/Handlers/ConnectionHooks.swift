import SquallCore

/// One connection's hooks as the WebSocket layer calls them (its ``WebSocketMessageSink``):
/// right on the event loop for a ``NonBlockingWebSocketHandler``, through a ``HookQueue`` for
/// any other. It also joins and leaves the connection's pool.
///
/// Contracts: the ``WebSocketHandler`` contracts — `open` first, messages in order, `onClose`
/// exactly once; a hook that throws ends the connection with 1011, and no later message
/// reaches the hooks.
final class ConnectionHooks: WebSocketMessageSink {
    /// How the hooks run.
    enum Runner {
        /// On Swift concurrency, in order, through a queue.
        case queued(HookQueue)
        /// Right here on the event loop.
        case now(any NonBlockingWebSocketHandler)
    }

    let connection: WebSocketConnection
    private let runner: Runner
    private let pool: ConnectionPool
    /// The error `openNow` threw: it is the end cause, and no message reaches the hooks.
    private var openFailure: (any Error)?

    init(connection: WebSocketConnection, runner: Runner, pool: ConnectionPool) {
        self.connection = connection
        self.runner = runner
        self.pool = pool
    }

    /// Opens the connection: joins the pool and runs the open hook (or queues it). Called
    /// before the 101 response is written, so that the client cannot see the handshake complete
    /// before its subscriptions exist: a message published just after it would be lost.
    func open() {
        // A pool that is closing (shutdown) closes the newcomer at once.
        pool.add(connection)
        switch runner {
        case .queued(let queue):
            _ = queue.enqueue(.open)
        case .now(let handler):
            connection.logOpen()
            do {
                try handler.openNow(connection)
            } catch {
                openFailure = error
                connection.logHookFailed(error)
                connection.close(.serverError)
            }
        }
    }

    func received(_ message: Payload) throws -> Bool {
        switch runner {
        case .queued(let queue):
            return queue.enqueue(.message(message))
        case .now(let handler):
            guard openFailure == nil else { return false }
            connection.logMessage(message)
            do {
                try handler.onMessageNow(connection, message)
            } catch {
                connection.logHookFailed(error)
                throw error
            }
            return false
        }
    }

    func ended(_ cause: CloseCause) {
        switch runner {
        case .queued(let queue):
            _ = queue.enqueue(.close(cause))
        case .now(let handler):
            let cause = openFailure.map { CloseCause.failed($0) } ?? cause
            handler.onCloseNow(connection, cause)
            connection.logClosed(cause)
            pool.remove(connection)
        }
    }
}
