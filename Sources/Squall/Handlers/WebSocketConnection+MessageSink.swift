// SPDX-License-Identifier: Apache-2.0

import SquallCore

/// A connection runs its own hooks, as the WebSocket layer's ``WebSocketMessageSink``: right on
/// the event loop for a ``NonBlockingWebSocketHandler``, through its ``HookQueue`` for any
/// other. It also joins and leaves the server's pool.
///
/// Contracts: the ``WebSocketHandler`` contracts — `open` first, messages in order, `onClose`
/// exactly once; a hook that throws ends the connection with 1011, and no later message
/// reaches the hooks. Every method runs on the connection's event loop.
extension WebSocketConnection: WebSocketMessageSink {
    /// Opens the connection: joins the pool and runs the open hook (or queues it). Called
    /// before the 101 response is written, so that the client cannot see the handshake complete
    /// before its subscriptions exist: a message published just after it would be lost.
    func open() {
        // A pool that is closing (shutdown) closes the newcomer at once.
        mounted.pool.add(self)
        // Squall's own transports announce their connections once the hooks let them in.
        if !mounted.announcesItself { announceConnected(user: identity?.presenceUser) }
        guard let handler = mounted.nonBlocking else {
            _ = queue?.enqueue(.open, for: self)
            return
        }
        logOpen()
        do {
            try handler.openNow(self)
        } catch {
            openFailure = error
            logHookFailed(error)
            close(.serverError)
        }
    }

    func received(_ message: Payload) throws -> Bool {
        guard let handler = mounted.nonBlocking else {
            return queue?.enqueue(.message(message), for: self) ?? false
        }
        guard openFailure == nil else { return false }
        logMessage(message)
        do {
            try handler.onMessageNow(self, message)
        } catch {
            logHookFailed(error)
            throw error
        }
        defer { readingHeld = false }
        return readingHeld
    }

    /// From a non-blocking message hook: read no more from the client once this message is
    /// handled, until ``resumeReading()``. What is already read is still handed over.
    func holdReading() {
        readingHeld = true
    }

    /// Reads from the client again after ``holdReading()``; from any thread.
    func resumeReading() {
        socket.pipeline.fireUserInboundEventTriggered(WebSocketFrameHandler.ResumeReading())
    }

    func ended(_ cause: CloseCause) {
        mounted.disconnections.count(DisconnectCause.of(cause, kicked: self[Kicked.self] ?? false, denied: self[Denied.self] ?? false).0)
        if !mounted.announcesItself { announceDisconnected(cause, user: identity?.presenceUser) }
        guard let handler = mounted.nonBlocking else {
            _ = queue?.enqueue(.close(cause), for: self)
            return
        }
        let cause = openFailure.map { CloseCause.failed($0) } ?? cause
        handler.onCloseNow(self, cause)
        logClosed(cause)
        mounted.pool.remove(self)
    }
}

/// Set on a connection the server API's `disconnect` closes, so that its `disconnected` event
/// says `kicked`.
enum Kicked: ConnectionStorageKey {
    typealias Value = Bool
}

extension WebSocketConnection {
    /// Records its `connected` event, when webhooks are on.
    func announceConnected(user: String?) {
        mounted.events?.connected(client: id, transport: mounted.transport, user: user, address: client)
    }

    /// Records its `disconnected` event for `cause`, when webhooks are on: `kicked` if the server
    /// API closed it, `denied` if a hook did.
    func announceDisconnected(_ cause: CloseCause, user: String?) {
        guard let events = mounted.events else { return }
        let (why, disconnect) = DisconnectCause.of(cause, kicked: self[Kicked.self] ?? false, denied: self[Denied.self] ?? false)
        events.disconnected(client: id, transport: mounted.transport, user: user, cause: why, disconnect: disconnect)
    }

    /// Closes it because a backend's hook decided so (`decision` is not an allow).
    func close(deniedBy decision: BackendHooks.Decision) {
        if case .deny = decision { self[Denied.self] = true }
        close(decision.disconnect ?? .hookUnavailable)
    }
}
