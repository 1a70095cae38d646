// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOCore
import SquallCore
import Synchronization

/// Writes one WebSocket's frames to its socket. It sits first in the channel's pipeline, next
/// to the socket, so frames — often one buffer shared by every subscriber of a broadcast — go
/// straight to the socket's write queue without passing any other handler.
///
/// Contracts:
/// - **Loop-confined.** Everything but ``closing`` is touched only on the channel's event loop
///   (hence `@unchecked Sendable`); other threads reach it through ``coalescer``.
/// - **Batches.** Frames of one loop turn are written to the socket's queue as they come and
///   flushed once, after the connection's last frame of the turn (``flushBatch()``), so the
///   kernel gets them in one `writev(2)`; a control or close frame written meanwhile flushes
///   them with it.
/// - **Bounded.** Each frame must be admitted by the connection's ``OutboxAccount``, which counts
///   what the socket has not taken yet; a refused frame closes the connection with 1008.
/// - **The state machine decides.** The connection's ``WebSocketStateMachine`` lives here (the
///   writer is in place from the connection's open to its end; ``WebSocketFrameHandler``
///   drives it too): it says whether a frame is written, held back until the 101 is written
///   (``release()``), or discarded after the close frame, and which close frame goes out.
/// - **At most one pong waits.** While the socket is not writable (the client does not read),
///   a ping is answered by remembering it: a later ping replaces it, and the pong goes out
///   when the socket drains (RFC 6455 §5.5.3 allows answering only the latest).
/// - ``queuedBytes`` counts what was submitted and not yet handed to the socket, so that the
///   reader can stop reading requests while their replies pile up.
final class FrameWriter: ChannelOutboundHandler, @unchecked Sendable {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Where other threads submit frames for this connection.
    let coalescer: WriteCoalescer
    /// Set, from any thread, once the connection is closing: writes are refused from then on.
    let closing = Atomic<Bool>(false)
    /// Bytes of frames submitted, from any thread, and not yet written to the socket's queue.
    let queuedBytes = Atomic<Int>(0)
    /// The latest ping's payload, while its pong waits for the socket to drain: boxed, so that
    /// a connection that owes no pong (nearly all) pays one pointer for it.
    private var heldPong: HeldPong?
    /// Whether each flush is told up the pipeline (``Flushed``): the reader, paused, looks then
    /// whether it may read again.
    var reportsFlushes = false

    /// Told up the pipeline after a flush while ``reportsFlushes`` is set.
    struct Flushed {}

    private final class HeldPong {
        let payload: ByteBuffer
        init(_ payload: ByteBuffer) { self.payload = payload }
    }
    /// The connection's life: see ``WebSocketStateMachine``.
    var machine: WebSocketStateMachine
    private var outbox: OutboxAccount
    let settings: Settings
    private let connectionID: UUID
    private var context: ChannelHandlerContext?
    /// Frames were written this turn and wait for ``flushBatch()``.
    private var batchOpen = false
    /// The last turn of its ``WriteCoalescer`` that this connection was given an item in: read
    /// and written only under that coalescer's lock (next to ``batchOpen``, in its padding).
    var queuedTurn: UInt32 = 0
    /// What was submitted before the 101 was written, while the machine says to hold it.
    private var held: [WriteCoalescer.Item] = []

    /// What every connection's writer shares: one object per server rather than a copy per
    /// connection (a logger alone is about 56 bytes, and idle connections are counted in
    /// thousands).
    final class Settings: Sendable {
        let limits: Outbox.Limits
        let closeTimeout: Duration
        let maxMessageSize: Int
        let pingInterval: Duration?
        let logger: Logger

        init(limits: Outbox.Limits, closeTimeout: Duration, maxMessageSize: Int, pingInterval: Duration?, logger: Logger) {
            self.limits = limits
            self.closeTimeout = closeTimeout
            self.maxMessageSize = maxMessageSize
            self.pingInterval = pingInterval
            self.logger = logger
        }
    }

    /// - Parameter deflate: permessage-deflate was negotiated.
    init(loop: any EventLoop, settings: Settings, connectionID: UUID, deflate: Bool) {
        self.coalescer = .forLoop(loop)
        self.machine = WebSocketStateMachine(maxMessageSize: settings.maxMessageSize, deflate: deflate)
        self.outbox = OutboxAccount(limits: settings.limits)
        self.settings = settings
        self.connectionID = connectionID
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Takes one submitted item on the loop. Frames stay in the socket's queue until the
    /// connection's `last` item of the turn, which flushes them all: a connection that gets one
    /// frame in a turn (a quiet chat's every delivery) is written and flushed in one pass of
    /// the pipeline, while its objects are still in the cache.
    /// - Returns: `true` when this opened the connection's batch for this turn: the caller
    ///   calls ``flushBatch()`` once the turn's items are written (unless `last` did).
    func write(_ item: WriteCoalescer.Item, last: Bool) -> Bool {
        defer { if last { flushBatch() } }
        let decision = machine.write()
        if decision == .hold {
            held.append(item)  // still counted as queued: it is written on release
            return false
        }
        if case .frame(let frame) = item { queuedBytes.subtract(frame.readableBytes, ordering: .relaxed) }
        guard decision == .write, let context else { return false }
        switch item {
        case .frame(let frame):
            let opensBatch = !batchOpen
            if opensBatch { settleIfDue(context) }
            var admitted = outbox.admit(bytes: frame.readableBytes)
            if !admitted {
                // The count may be stale: the kernel may have taken all of this turn's frames
                // so far, and everything before. Flush them and look once more before calling
                // the client slow.
                if batchOpen { context.flush() }
                settleOutbox(context)
                admitted = outbox.admit(bytes: frame.readableBytes)
            }
            guard admitted else {
                closing.store(true, ordering: .relaxed)
                settings.logger.warning(
                    "Closing slow WebSocket client: outbox overflow",
                    metadata: [
                        "squall.connection": "\(connectionID)",
                        "squall.outbox.max_messages": "\(outbox.limits.maxMessages)",
                        "squall.outbox.max_bytes": "\(outbox.limits.maxBytes)",
                    ]
                )
                perform(machine.outboxOverflowed())
                return false
            }
            if opensBatch, last {
                context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
                settleIfDue(context)
                reportFlush(context)
                return false
            }
            context.write(wrapOutboundOut(frame), promise: nil)
            batchOpen = true
            return opensBatch
        case .close(let disconnect):
            perform(machine.close(disconnect))
            return false
        }
    }

    /// Writes what was held back while the upgrade completed, now that the 101 is written.
    func release() {
        machine.upgraded()
        let items = held
        held = []
        for item in items { _ = write(item, last: false) }
        flushBatch()
    }

    /// Flushes the frames queued this turn.
    func flushBatch() {
        guard let context, batchOpen else { return }
        batchOpen = false
        context.flush()
        settleIfDue(context)
        reportFlush(context)
    }

    private func reportFlush(_ context: ChannelHandlerContext) {
        if reportsFlushes { context.fireUserInboundEventTriggered(Flushed()) }
    }

    /// Messages the account counts before a flush settles it. Settling asks the socket what it
    /// still holds, a lookup through NIO's chain of channel options that costs more than the
    /// rest of a delivery's own work; a client that keeps up is settled once per this many
    /// messages rather than at every one. The count only ever over-states what waits, and
    /// nothing is refused before a fresh settle.
    /// (Half the account's limit when that is smaller, so that a small limit still sees the
    /// socket drain before it refuses.)
    private static let settleAfter = 32

    private func settleIfDue(_ context: ChannelHandlerContext) {
        if outbox.messages >= min(Self.settleAfter, max(1, outbox.limits.maxMessages / 2)) { settleOutbox(context) }
    }

    /// Brings the outbox up to date with what the socket's queue still holds: the kernel takes
    /// what it can at each flush, and what remains is what this client has not read.
    private func settleOutbox(_ context: ChannelHandlerContext) {
        let unsent = (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
        outbox.settle(unsentBytes: unsent)
    }

    /// Answers a ping: now if the socket takes writes, else once it drains (see the contract).
    func pong(_ payload: ByteBuffer) {
        guard let context, machine.write() == .write else { return }
        guard context.channel.isWritable else {
            heldPong = HeldPong(payload)
            return
        }
        heldPong = nil
        writeControl(WebSocketFrameBytes.frame(.pong, payload))
    }

    /// The socket's writability changed: a held pong goes out once it takes writes again.
    func writabilityChanged() {
        guard let context, context.channel.isWritable, let payload = heldPong?.payload else { return }
        heldPong = nil
        writeControl(WebSocketFrameBytes.frame(.pong, payload))
    }

    /// How many bytes wait for this client now: submitted and not yet in the socket's queue,
    /// plus what the socket's queue holds.
    var backlogBytes: Int {
        let unsent = (try? context?.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
        return queuedBytes.load(ordering: .relaxed) + unsent
    }

    /// Writes a control frame (ping, pong) now, after every frame queued before it, in the same
    /// flush.
    func writeControl(_ frame: ByteBuffer) {
        guard let context, machine.write() == .write else { return }
        batchOpen = false
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        settleIfDue(context)
        reportFlush(context)
    }

    /// Carries out the machine's answer to a close asked for: now, or queued behind what is
    /// queued for the client (no new frame is taken after it).
    func perform(_ action: WebSocketStateMachine.CloseAction) {
        switch action {
        case .none:
            break
        case .close(let disconnect):
            writeClose(disconnect)
        case .queue(let disconnect):
            closing.store(true, ordering: .relaxed)
            coalescer.submit(.close(disconnect), for: self)
        }
    }

    /// Writes the close frame the machine chose, after every frame queued before it; nothing is
    /// written after it.
    /// - Parameter dropAfterWrite: `true` when answering the client's close: the TCP connection
    ///   ends once the frame is written. Otherwise the client has the close timeout to answer
    ///   before the TCP connection is dropped (it stopped reading, or vanished).
    func writeClose(_ disconnect: Disconnect, dropAfterWrite: Bool = false) {
        guard let context else { return }
        closing.store(true, ordering: .relaxed)
        batchOpen = false  // the close frame's flush sends the batch too
        let channel = context.channel
        if dropAfterWrite {
            context.writeAndFlush(wrapOutboundOut(WebSocketFrameBytes.close(disconnect))).whenComplete { _ in
                channel.close(promise: nil)
            }
            // Usually the socket took the frame at once and the channel is closed already; a
            // timer per closed connection would only fill the loop's timer heap.
            guard channel.isActive else { return }
        } else {
            context.writeAndFlush(wrapOutboundOut(WebSocketFrameBytes.close(disconnect)), promise: nil)
        }
        reportFlush(context)
        channel.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(settings.closeTimeout)) { [self] in
            if machine.closeTimedOut() { channel.close(promise: nil) }
        }
    }

    /// This connection's logger: the server's, with the connection's id.
    var logger: Logger {
        var logger = settings.logger
        logger[metadataKey: "squall.connection"] = "\(connectionID)"
        return logger
    }
}

extension Channel {
    /// Closes the TCP connection after `timeout`, whatever state it is in by then.
    func close(after timeout: Duration) {
        eventLoop.scheduleTask(in: TimeAmount(timeout)) { [self] in close(promise: nil) }
    }

    /// Ends an answered connection the way a client can read the answer: the server's side is
    /// shut (the client sees the end of the response), what the client still sends is read and
    /// dropped — closing with unread input would reset the connection and could destroy the
    /// answer in flight — and the socket closes when the client closes its side, or at
    /// `deadline` (2 s from now unless given).
    func closeLingering(until deadline: NIODeadline = .now() + .seconds(2)) {
        close(mode: .output, promise: nil)
        eventLoop.scheduleTask(deadline: deadline) { [self] in close(promise: nil) }
    }
}
