// SPDX-License-Identifier: Apache-2.0

import DequeModule
import NIOCore
import SquallCore
import Synchronization

/// Runs one connection's ``WebSocketHandler`` hooks one at a time, in order: `open`, each
/// message as it arrived, then `onClose` exactly once.
///
/// An idle connection costs no task: a task is started when an event arrives and nobody is
/// running the queue, and it ends when the queue is empty. A client that sends faster than its
/// hooks finish is not read from (the socket's `autoRead` is switched off) until the queue has
/// drained, so a flood costs bounded memory and pushes back through TCP.
final class HookQueue: Sendable {
    enum Event: Sendable {
        case open
        case message(Payload)
        case close(CloseCause)
    }

    private struct State {
        var events = Deque<Event>()
        var running = false
        var readingPaused = false
        var failure: (any Error)?
    }

    /// Above this many waiting messages the client is no longer read from…
    static let pauseAbove = 64
    /// …until no more than this many wait.
    static let resumeAt = 16

    private let handler: any WebSocketHandler
    private let state = Mutex(State())

    /// A queue for hooks of `handler`. It holds no connection (the connection holds it): the
    /// connection is handed to each ``enqueue(_:for:)`` and kept by the task that drains.
    init(handler: any WebSocketHandler) {
        self.handler = handler
    }

    /// Queues `event` for `connection`'s hooks.
    /// - Returns: `true` when the caller should stop reading from the client (the queue is
    ///   long); the queue turns reading back on itself.
    func enqueue(_ event: Event, for connection: WebSocketConnection) -> Bool {
        let (start, pause) = state.withLock { state in
            state.events.append(event)
            let pause = !state.readingPaused && state.events.count > Self.pauseAbove
            if pause { state.readingPaused = true }
            defer { state.running = true }
            return (!state.running, pause)
        }
        if start {
            Task { await self.drain(connection) }
        }
        return pause
    }

    private func drain(_ connection: WebSocketConnection) async {
        while let event = next(connection) {
            await run(event, connection)
        }
    }

    private func next(_ connection: WebSocketConnection) -> Event? {
        let (event, resumeReading) = state.withLock { state -> (Event?, Bool) in
            guard let event = state.events.popFirst() else {
                state.running = false
                return (nil, false)
            }
            let resume = state.readingPaused && state.events.count <= Self.resumeAt
            if resume { state.readingPaused = false }
            return (event, resume)
        }
        if resumeReading {
            // The frame handler owns the socket's reading: it turns it back on unless it has
            // paused it for a reason of its own.
            connection.socket.pipeline.fireUserInboundEventTriggered(WebSocketFrameHandler.ResumeReading())
        }
        return event
    }

    private func run(_ event: Event, _ connection: WebSocketConnection) async {
        switch event {
        case .open:
            connection.logOpen()
            do {
                try await handler.open(connection)
            } catch {
                failed(error, connection)
            }
        case .message(let payload):
            guard state.withLock({ $0.failure == nil }) else { return }
            connection.logMessage(payload)
            do {
                try await handler.onMessage(connection, payload)
            } catch {
                failed(error, connection)
            }
        case .close(let cause):
            let cause = state.withLock { $0.failure }.map { CloseCause.failed($0) } ?? cause
            await handler.onClose(connection, cause)
            connection.logClosed(cause)
            connection.mounted.pool.remove(connection)
        }
    }

    /// A hook threw: the connection ends with 1011 and no later message reaches the hooks.
    private func failed(_ error: any Error, _ connection: WebSocketConnection) {
        state.withLock { $0.failure = error }
        connection.logHookFailed(error)
        connection.close(.serverError)
    }
}
