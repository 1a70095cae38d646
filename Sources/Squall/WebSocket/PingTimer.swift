// SPDX-License-Identifier: Apache-2.0

import NIOCore
import Synchronization

/// One timer per event loop and ping interval that pings every WebSocket on that loop, instead
/// of a scheduled task per connection: an idle connection then costs a table entry rather than
/// a timer and its closure, several times the size.
///
/// Contracts: everything but ``forLoop(_:interval:)`` runs on the loop (hence
/// `@unchecked Sendable`); a connection is ticked every `interval` from the first tick after it
/// registers; the timer stops when no connection is left and restarts with the next. Each tick's
/// pings carry a fresh random ``nonce``: only a pong that echoes it answers the ping (RFC 6455
/// §5.5.3), so a client cannot stay alive on unsolicited pongs without reading.
final class PingTimer: @unchecked Sendable {
    private let loop: any EventLoop
    private let interval: TimeAmount
    private var members: [ObjectIdentifier: WebSocketFrameHandler] = [:]
    private var task: RepeatedTask?
    /// The nonce of this tick's pings.
    private(set) var nonce: UInt64 = 0
    /// This tick's ping frame, carrying ``nonce``: made once per tick, written to every
    /// connection on the loop.
    private(set) var frame = ByteBuffer()

    private init(loop: any EventLoop, interval: TimeAmount) {
        self.loop = loop
        self.interval = interval
    }

    /// Ticks `handler` every interval until ``remove(_:)``.
    func add(_ handler: WebSocketFrameHandler) {
        members[ObjectIdentifier(handler)] = handler
        if task == nil {
            task = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] _ in
                tick()
            }
        }
    }

    /// Stops ticking `handler`.
    func remove(_ handler: WebSocketFrameHandler) {
        members[ObjectIdentifier(handler)] = nil
        if members.isEmpty {
            task?.cancel()
            task = nil
        }
    }

    private func tick() {
        var generator = SystemRandomNumberGenerator()
        nonce = generator.next()
        var payload = ByteBuffer()
        payload.writeInteger(nonce)
        frame = WebSocketFrameBytes.frame(.ping, payload)
        // A tick may close connections, which removes them: iterate over a snapshot.
        for handler in Array(members.values) { handler.pingTick() }
    }

    private struct Key: Hashable {
        let loop: ObjectIdentifier
        let interval: TimeAmount
    }

    private static let all = Mutex<[Key: PingTimer]>([:])

    /// The timer of `loop` for `interval`, made on first use.
    static func forLoop(_ loop: any EventLoop, interval: TimeAmount) -> PingTimer {
        all.withLock { all in
            let key = Key(loop: ObjectIdentifier(loop), interval: interval)
            if let existing = all[key] { return existing }
            let timer = PingTimer(loop: loop, interval: interval)
            all[key] = timer
            return timer
        }
    }
}
