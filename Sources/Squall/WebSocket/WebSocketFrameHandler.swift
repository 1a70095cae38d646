// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SquallCore

/// Where the WebSocket layer hands what it has read: whole, checked messages, and the end of the
/// connection. The hook API's connection implements it; the WebSocket layer knows no
/// handler, pool or transport.
protocol WebSocketMessageSink: AnyObject {
    /// A whole message arrived.
    /// - Returns: `true` when the socket should not be read until ``WebSocketFrameHandler/ResumeReading``
    ///   is told to the pipeline (the hooks are behind).
    /// - Throws: the error of a hook that failed: the connection closes with 1011.
    func received(_ message: Payload) throws -> Bool
    /// The connection ended, for `cause`. Called exactly once.
    func ended(_ cause: CloseCause)
}

/// The server side of RFC 6455 for one connection, on its event loop: a thin shell that reads
/// frames from the socket's bytes (``WebSocketFrameParser``), feeds them and the ping timer's
/// ticks to the connection's ``WebSocketStateMachine`` (kept by its ``FrameWriter``), and carries
/// out what the machine answers — a message to the ``WebSocketMessageSink``, a pong, a close.
///
/// **Read no faster than the client reads.** Requests whose replies are not read would
/// otherwise pile up replies in memory: once more than ``pauseAboveBytes`` wait for this client
/// (submitted, or in the socket's queue), the handler stops taking frames — what has arrived
/// stays in the parser, and the socket is not read — until the socket drains. The sink can
/// pause reading too, until it tells the pipeline ``ResumeReading``.
final class WebSocketFrameHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    /// Told to the connection's pipeline by the sink once it may be given messages again.
    struct ResumeReading {}

    let writer: FrameWriter
    private let sink: any WebSocketMessageSink
    private var parser: WebSocketFrameParser
    private var pingTimer: PingTimer?
    /// Kept for ``pingTick()``; let go when the handler leaves the pipeline.
    private var context: ChannelHandlerContext?
    /// Frames are not taken until the client reads what waits for it.
    private var paused = false
    /// The sink is behind: the socket is not read until it says ``ResumeReading``.
    private var sinkPaused = false
    /// This connection's slot in ``pingTimer``'s wheel.
    private var pingSlot: Int32 = 0
    /// The slot's next tick came too soon after the connection opened: it passes.
    private var skipsNextPing = false

    /// Above this many bytes waiting for the client, no more of its frames are taken: NIO's
    /// default high watermark, past which the socket reports itself not writable — and so tells
    /// when it drains again.
    static let pauseAboveBytes = 64 * 1024

    init(writer: FrameWriter, sink: any WebSocketMessageSink, maxMessageSize: Int) {
        self.writer = writer
        self.sink = sink
        self.parser = WebSocketFrameParser(maxFrameSize: maxMessageSize)
    }

    /// The upgrade failed after the connection opened (the 101 could not be written): it ends
    /// as if the client had left, so that its hooks see it go.
    func abandon() {
        sink.ended(writer.machine.socketClosed())
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let pingInterval = writer.settings.pingInterval {
            let timer = PingTimer.forLoop(context.eventLoop, interval: TimeAmount(pingInterval))
            let place = timer.add(self)
            pingSlot = Int32(truncatingIfNeeded: place.slot)
            skipsNextPing = place.skipsFirstTick
            pingTimer = timer
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        pingTimer?.remove(self, slot: Int(pingSlot))
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        parser.append(unwrapInboundIn(data))
        takeFrames(context: context)
    }

    /// Takes the frames that have arrived, unless replies pile up: then pauses (see the type).
    private func takeFrames(context: ChannelHandlerContext) {
        do {
            while !paused, let frame = try parser.next() {
                perform(writer.machine.received(frame), context: context)
                if !writer.machine.isClosing, writer.backlogBytes > Self.pauseAboveBytes { pause(context) }
            }
        } catch {
            closeForViolation(writer.machine.parseFailed(error))
        }
        // What has arrived of the next frame: text is checked as it comes.
        let writer = self.writer
        if !paused, let part = parser.nextPart(if: { writer.machine.wantsPart($0, rsv1: $1) }) {
            perform(writer.machine.receivedPart(part), context: context)
        }
    }

    private func perform(_ action: WebSocketStateMachine.FrameAction, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .deliver(let message):
            do {
                if try sink.received(message) {
                    sinkPaused = true
                    context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
                }
            } catch {
                writer.perform(writer.machine.hookFailed(error))
            }
        case .pong(let payload):
            writer.pong(payload)
        case .close(let disconnect):
            closeForViolation(.queue(disconnect))
        case .answerClose(let disconnect):
            writer.writeClose(disconnect, dropAfterWrite: true)
        case .drop:
            context.close(promise: nil)
        }
    }

    private func closeForViolation(_ action: WebSocketStateMachine.CloseAction) {
        switch action {
        case .close(let disconnect), .queue(let disconnect):
            writer.logger.debug("WebSocket protocol violation", metadata: ["close": "\(disconnect)"])
        case .none:
            break
        }
        writer.perform(action)
    }

    private func pause(_ context: ChannelHandlerContext) {
        paused = true
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        // The replies just made reach the socket's queue on this loop's next write pass; if the
        // socket takes them, nothing will say it drained: the writer says when it has flushed.
        writer.reportsFlushes = true
    }

    /// Resumes taking frames once the socket takes writes again (below NIO's high watermark,
    /// which it reports on the way back), or once a close frame is out: its answer must be read.
    private func resumeIfDrained() {
        guard paused, let context, context.channel.isActive else { return }
        guard context.channel.isWritable || writer.machine.sentClose != nil else { return }
        paused = false
        writer.reportsFlushes = false
        takeFrames(context: context)
        if !paused, !sinkPaused {
            context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writer.writabilityChanged()
        resumeIfDrained()
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        writer.logger.debug("WebSocket connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is FrameWriter.Flushed { return resumeIfDrained() }
        if event is ResumeReading {
            sinkPaused = false
            if !paused { context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in } }
            return
        }
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)  // the client half-closed: nothing more will arrive
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        sink.ended(writer.machine.socketClosed())
        context.fireChannelInactive()
    }

    /// Called by the loop's ``PingTimer`` every ping interval (see the machine's ping rule).
    func pingTick() {
        guard !skipsNextPing else {
            skipsNextPing = false
            return
        }
        guard let context, context.channel.isActive, let pingTimer else { return }
        switch writer.machine.pingDue(nonce: pingTimer.nonce) {
        case .none:
            break
        case .drop:
            writer.logger.info("WebSocket client did not answer a ping: dropping it")
            context.close(promise: nil)
        case .ping:
            writer.writeControl(pingTimer.frame)
        }
    }
}
