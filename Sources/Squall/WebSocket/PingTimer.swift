// SPDX-License-Identifier: Apache-2.0

import NIOCore
import Synchronization

/// One timer per event loop and ping interval that pings every WebSocket on that loop, instead
/// of a scheduled task per connection: an idle connection then costs a table entry rather than
/// a timer and its closure, several times the size.
///
/// It is a wheel: connections are dealt into ``slotCount(for:)`` slots, and each tick (every
/// interval ÷ slots) pings one slot. A million connections' pings then come as a steady stream —
/// at 30 s, about 33,000 a second — in small groups, rather than as one burst per interval that
/// would hold the loop for as long as writing them all takes. Slots are dealt in bit-reversed
/// order (0, ½, ¼, ¾, …, of the wheel), so that however many connections there are, they are
/// spread over the whole interval.
///
/// Contracts: everything but ``forLoop(_:interval:)`` runs on the loop (hence
/// `@unchecked Sendable`); a connection is ticked every `interval`, the first time between half
/// an interval and one and a half after it registers, whatever each tick costs (ticks keep to
/// deadlines, not delays); the
/// timer stops when no connection is left and restarts with the next. Each tick's pings carry a
/// fresh random ``nonce``: only a pong that echoes it answers the ping (RFC 6455 §5.5.3), so a
/// client cannot stay alive on unsolicited pongs without reading.
final class PingTimer: @unchecked Sendable {
    private let loop: any EventLoop
    private let step: TimeAmount
    private var slots: [[ObjectIdentifier: WebSocketFrameHandler]]
    private var members = 0
    /// The slot the next tick pings.
    private var nextSlot = 0
    /// How many connections have been dealt: the next one's slot is this, bit-reversed.
    private var dealt: UInt32 = 0
    private var deadline = NIODeadline.now()
    private var scheduled: Scheduled<Void>?
    /// The nonce of this tick's pings.
    private(set) var nonce: UInt64 = 0
    /// This tick's ping frame, carrying ``nonce``: made once per tick, written to every
    /// connection of its slot.
    private(set) var frame = ByteBuffer()

    /// Slots for `interval`: a power of two, at most 1,024, with ticks at least 5 ms apart.
    static func slotCount(for interval: TimeAmount) -> Int {
        var slots = 1
        while slots < 1024, interval.nanoseconds / Int64(slots * 2) >= 5_000_000 { slots *= 2 }
        return slots
    }

    private init(loop: any EventLoop, interval: TimeAmount) {
        self.loop = loop
        let slots = Self.slotCount(for: interval)
        self.step = .nanoseconds(interval.nanoseconds / Int64(slots))
        self.slots = Array(repeating: [:], count: slots)
    }

    /// Ticks `handler` every interval until ``remove(_:slot:)``.
    /// - Returns: its slot, for ``remove(_:slot:)``, and whether it lets its slot's next tick
    ///   pass: one that comes within half an interval, so that a new connection's first ping
    ///   comes between half an interval and one and a half after it opened, never at once.
    func add(_ handler: WebSocketFrameHandler) -> (slot: Int, skipsFirstTick: Bool) {
        // The deal count's low bits, reversed (slots.count is a power of two).
        var count = Int(dealt) & (slots.count - 1)
        var slot = 0
        for _ in 0..<slots.count.trailingZeroBitCount {
            slot = slot << 1 | count & 1
            count >>= 1
        }
        dealt &+= 1
        slots[slot][ObjectIdentifier(handler)] = handler
        members += 1
        if scheduled == nil {
            deadline = .now()
            scheduleTick()
        }
        let ticksAway = (slot - nextSlot + slots.count) % slots.count
        return (slot, ticksAway < slots.count / 2)
    }

    /// Stops ticking `handler`, registered in `slot`.
    func remove(_ handler: WebSocketFrameHandler, slot: Int) {
        guard slots[slot].removeValue(forKey: ObjectIdentifier(handler)) != nil else { return }
        // An emptied slot lets go of its table: a table keeps its capacity, and a thousand small
        // ones left scattered through the heap would pin pages the connections' memory was on.
        if slots[slot].isEmpty { slots[slot] = [:] }
        members -= 1
        if members == 0 {
            scheduled?.cancel()
            scheduled = nil
        }
    }

    private func scheduleTick() {
        // Behind (the loop was stalled): the wheel's schedule moves by the stall rather than
        // firing the missed ticks at once, so every slot still gets a whole interval to answer.
        deadline = max(deadline + step, .now())
        scheduled = loop.scheduleTask(deadline: deadline) { [self] in
            tick()
            if members > 0 { scheduleTick() } else { scheduled = nil }
        }
    }

    private func tick() {
        let slot = nextSlot
        nextSlot = (nextSlot + 1) % slots.count
        guard !slots[slot].isEmpty else { return }
        var generator = SystemRandomNumberGenerator()
        nonce = generator.next()
        var payload = ByteBuffer()
        payload.writeInteger(nonce)
        frame = WebSocketFrameBytes.frame(.ping, payload)
        // A tick may close connections, which removes them: iterate over a snapshot.
        for handler in Array(slots[slot].values) { handler.pingTick() }
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
