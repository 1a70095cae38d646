// SPDX-License-Identifier: Apache-2.0

import SquallCore

/// Tornado's `WebSocketHandler` hooks, in Swift.
///
/// Conform to it (as the seed's `MsgHandler` subclasses Tornado's) or build one at run time
/// from closures with ``ClosureWebSocketHandler``, then mount it on a path with
/// ``SquallServer/mount(_:handler:)``. One handler value serves every connection on its path;
/// per-connection state belongs in the ``WebSocketConnection`` it is given.
///
/// Contracts:
/// - For each connection the hooks run one at a time, in order: `open`, then `onMessage` per
///   message in arrival order, then `onClose` exactly once (even if `open` threw).
/// - Hooks of different connections run concurrently.
/// - A hook that throws ends its connection with 1011 (internal error); the error is logged.
/// - Writing never waits: ``WebSocketConnection/writeMessage(_:)`` queues to the connection's
///   bounded outbox, so a slow client never blocks a hook.
public protocol WebSocketHandler: Sendable {
    /// A client connected (Tornado's `open`). Default: nothing.
    func open(_ connection: WebSocketConnection) async throws
    /// A whole message arrived from the client (Tornado's `on_message`): text or binary,
    /// already reassembled from fragments and checked against the size limit. Default: nothing.
    func onMessage(_ connection: WebSocketConnection, _ message: Payload) async throws
    /// The connection ended (Tornado's `on_close`); `cause` says why. Default: nothing.
    func onClose(_ connection: WebSocketConnection, _ cause: CloseCause) async
}

extension WebSocketHandler {
    /// Does nothing.
    public func open(_ connection: WebSocketConnection) async throws {}
    /// Does nothing.
    public func onMessage(_ connection: WebSocketConnection, _ message: Payload) async throws {}
    /// Does nothing.
    public func onClose(_ connection: WebSocketConnection, _ cause: CloseCause) async {}
}

/// A handler assembled at run time from closures, as the seed builds a class with
/// `type(name, bases, dict)` from a dictionary of functions.
///
/// ```swift
/// let shout = ClosureWebSocketHandler(name: "Shout", onMessage: { connection, message in
///     connection.writeMessage(.text(message.text?.uppercased() ?? ""))
/// })
/// server.mount("/shout", handler: shout)
/// ```
public struct ClosureWebSocketHandler: WebSocketHandler {
    /// The hook `open` runs.
    public typealias Open = @Sendable (WebSocketConnection) async throws -> Void
    /// The hook `onMessage` runs.
    public typealias OnMessage = @Sendable (WebSocketConnection, Payload) async throws -> Void
    /// The hook `onClose` runs.
    public typealias OnClose = @Sendable (WebSocketConnection, CloseCause) async -> Void

    /// A name for logs, like the class name given to `type()`.
    public let name: String
    private let openHook: Open
    private let messageHook: OnMessage
    private let closeHook: OnClose

    /// A handler named `name` whose hooks run the given closures; an omitted hook does nothing.
    public init(
        name: String,
        open: @escaping Open = { _ in },
        onMessage: @escaping OnMessage = { _, _ in },
        onClose: @escaping OnClose = { _, _ in }
    ) {
        self.name = name
        self.openHook = open
        self.messageHook = onMessage
        self.closeHook = onClose
    }

    /// Runs the `open` closure.
    public func open(_ connection: WebSocketConnection) async throws {
        try await openHook(connection)
    }

    /// Runs the `onMessage` closure.
    public func onMessage(_ connection: WebSocketConnection, _ message: Payload) async throws {
        try await messageHook(connection, message)
    }

    /// Runs the `onClose` closure.
    public func onClose(_ connection: WebSocketConnection, _ cause: CloseCause) async {
        await closeHook(connection, cause)
    }
}
