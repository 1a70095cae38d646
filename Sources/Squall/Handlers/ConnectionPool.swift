// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import SquallCore
import Synchronization

/// A set of open connections and a broadcast to all of them — the seed's `conn_pool = set()`.
///
/// Broadcast never waits: it queues the message in each connection's outbox and returns, so
/// one slow client cannot delay the others (it is closed instead; see ``WebSocketConnection``).
/// Once ``closeAll(_:)`` has run, the pool is closing: connections added after it are closed
/// at once with the same disconnect.
public final class ConnectionPool: Sendable {
    private struct State {
        var members: [UUID: WebSocketConnection] = [:]
        /// How many members each transport has, kept as they come and go: read per scrape
        /// without a pass over the members.
        var byTransport: [String: Int] = [:]
        var closing: Disconnect?
        var emptyWaiters: [UUID: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    /// An empty pool.
    public init() {}

    /// Adds `connection`. In a closing pool the connection is closed instead.
    /// - Returns: `true` if it joined.
    @discardableResult
    public func add(_ connection: WebSocketConnection) -> Bool {
        let closing = state.withLock { state -> Disconnect? in
            if let closing = state.closing { return closing }
            if state.members.updateValue(connection, forKey: connection.id) == nil {
                state.byTransport[connection.mounted.transport, default: 0] += 1
            }
            return nil
        }
        if let closing {
            connection.close(closing)
            return false
        }
        return true
    }

    /// Removes `connection`, if it is a member.
    public func remove(_ connection: WebSocketConnection) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            if state.members.removeValue(forKey: connection.id) != nil {
                state.byTransport[connection.mounted.transport, default: 0] -= 1
            }
            guard state.members.isEmpty else { return [] }
            defer { state.emptyWaiters = [:] }
            return Array(state.emptyWaiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// How many connections are in the pool.
    public var count: Int { state.withLock { $0.members.count } }

    /// Open connections by transport (`ws`, `msg`, `websocket`), for the admin page and
    /// `/metrics`.
    var countsByTransport: [String: Int] { state.withLock { $0.byTransport } }

    /// The connections in the pool now, in no particular order.
    public var connections: [WebSocketConnection] { state.withLock { Array($0.members.values) } }

    /// Queues `message` for every connection in the pool, the sender included.
    /// - Returns: how many connections accepted it.
    @discardableResult
    public func broadcast(_ message: Payload) -> Int {
        // Writing only queues, so holding the lock across the loop is short and cannot
        // deadlock: an overflowing connection schedules its own close and does not call back.
        // Encoded once, shared by every socket; compressed once per window too, for the first
        // connection that negotiated permessage-deflate with it and wants this size compressed.
        let frame = WebSocketFrameBytes.frame(message)
        var deflated: [DeflateWindow: ByteBuffer] = [:]
        return state.withLock { state in
            var delivered = 0
            for connection in state.members.values {
                var bytes = frame
                if connection.compresses(payloadBytes: message.bytes.readableBytes) {
                    let window = connection.deflateWindow
                    bytes = deflated[window] ?? WebSocketFrameBytes.deflatedFrame(.init(message.kind), message.bytes, window: window)
                    deflated[window] = bytes
                }
                if connection.writeFrame(bytes) { delivered += 1 }
            }
            return delivered
        }
    }

    /// Closes every connection with `disconnect` and every later arrival too.
    public func closeAll(_ disconnect: Disconnect) {
        let members = state.withLock { state in
            state.closing = state.closing ?? disconnect
            return Array(state.members.values)
        }
        for connection in members { connection.close(disconnect) }
    }

    /// Returns once the pool is empty, or when the calling task is cancelled.
    public func waitUntilEmpty() async {
        let ticket = UUID.random()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let done = state.withLock { state in
                    if state.members.isEmpty || Task.isCancelled { return true }
                    state.emptyWaiters[ticket] = continuation
                    return false
                }
                if done { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.emptyWaiters.removeValue(forKey: ticket) }?.resume()
        }
    }
}
