import NIOCore
import SquallCore

/// The server side of RFC 6455 for one connection, on its event loop: reassembles messages from
/// frames, enforces the size limit and UTF-8, answers pings, keeps the peer alive with pings of
/// its own, runs the close handshake, and hands whole messages to the connection's hooks —
/// right here for a ``NonBlockingWebSocketHandler``, through a ``HookQueue`` for any other.
/// It reads the socket's bytes itself (``WebSocketFrameParser``); ``FrameWriter`` writes for it.
///
/// With permessage-deflate negotiated, a message whose first frame has RSV1 set is compressed:
/// its frames are reassembled, then inflated on their own (the client agreed to no context
/// takeover), and the size limit applies to the inflated message as well.
///
/// Failures close with the RFC's codes: 1002 for a protocol error (unmasked frame, reserved
/// bits, a continuation out of place), 1009 for a message over the limit, 1007 for a text
/// message that is not UTF-8 or a compressed one that does not inflate. After its close frame
/// the server reads only the client's answer.
///
/// **Read no faster than the client reads.** Requests whose replies are not read would
/// otherwise pile up replies in memory: once more than ``pauseAboveBytes`` wait for this client
/// (submitted, or in the socket's queue), the handler stops taking frames — what has arrived
/// stays in the parser, and the socket is not read — until the socket drains.
final class WebSocketFrameHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    /// Why the server failed a connection: the close it sent.
    struct ProtocolViolation: Error, CustomStringConvertible {
        let disconnect: Disconnect
        var description: String { "\(disconnect)" }
    }

    /// How the connection's hooks run.
    enum Hooks {
        /// On Swift concurrency, in order, through a queue.
        case queued(HookQueue)
        /// Right here on the event loop.
        case now(any NonBlockingWebSocketHandler)
    }

    let connection: WebSocketConnection
    private let hooks: Hooks
    private let pool: ConnectionPool
    private let maxMessageSize: Int
    private let pingInterval: Duration?
    private var parser: WebSocketFrameParser
    private var writer: FrameWriter { connection.writer }
    /// The message being reassembled from a fragmented one.
    private var fragments: (kind: Payload.Kind, compressed: Bool, bytes: ByteBuffer)?
    private var violation: ProtocolViolation?
    /// The error a hook threw (on-loop hooks only; a ``HookQueue`` keeps its own).
    private var hookFailure: (any Error)?
    private var clientClosed = false
    private var awaitingPong = false
    private var pingTimer: PingTimer?
    /// Kept for ``pingTick()``; let go when the handler leaves the pipeline.
    private var context: ChannelHandlerContext?
    /// Frames are not taken until the client reads what waits for it.
    private var paused = false
    /// The ``HookQueue`` is too long: the socket is not read until it drains.
    private var hooksPaused = false

    /// Above this many bytes waiting for the client, no more of its frames are taken: NIO's
    /// default high watermark, past which the socket reports itself not writable — and so tells
    /// when it drains again.
    static let pauseAboveBytes = 64 * 1024

    init(connection: WebSocketConnection, hooks: Hooks, pool: ConnectionPool, maxMessageSize: Int, pingInterval: Duration?) {
        self.connection = connection
        self.hooks = hooks
        self.pool = pool
        self.maxMessageSize = maxMessageSize
        self.pingInterval = pingInterval
        self.parser = WebSocketFrameParser(maxFrameSize: maxMessageSize)
    }

    /// Opens the connection: joins the pool and runs the open hook (or queues it). Called
    /// before the 101 response is written, so that the client cannot see the handshake complete
    /// before its subscriptions exist: a message published just after it would be lost.
    func open() {
        // A pool that is closing (shutdown) closes the newcomer at once.
        pool.add(connection)
        switch hooks {
        case .queued(let queue):
            _ = queue.enqueue(.open)
        case .now(let handler):
            connection.logOpen()
            do {
                try handler.openNow(connection)
            } catch {
                hookFailed(error)
            }
        }
    }

    /// The upgrade failed after ``open()`` (the 101 could not be written): the connection closes
    /// as if the client had left, so that its hooks and the pool see it go.
    func abandon() {
        connectionEnded(.clientClosed)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let pingInterval {
            pingTimer = PingTimer.forLoop(context.eventLoop, interval: TimeAmount(pingInterval))
            pingTimer?.add(self)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        pingTimer?.remove(self)
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
                receive(frame, context: context)
                if writer.sentClose == nil, writer.backlogBytes > Self.pauseAboveBytes { pause(context) }
            }
        } catch {
            switch error {
            case .tooBig: fail(1009, "message too big")
            case .protocolError(let reason): fail(1002, reason)
            }
        }
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
        guard context.channel.isWritable || writer.sentClose != nil else { return }
        paused = false
        writer.reportsFlushes = false
        takeFrames(context: context)
        if !paused, !hooksPaused {
            context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writer.writabilityChanged()
        resumeIfDrained()
        context.fireChannelWritabilityChanged()
    }

    private func receive(_ frame: ClientFrame, context: ChannelHandlerContext) {
        if writer.sentClose != nil {
            // Closing: only the client's answer to our close frame matters now.
            if frame.opcode == .close { context.close(promise: nil) }
            return
        }
        guard frame.masked else { return fail(1002, "client frames must be masked") }
        guard !frame.rsv2or3 else { return fail(1002, "reserved bits set") }
        // RSV1 marks a compressed message: only with permessage-deflate, only on a first frame.
        if frame.rsv1 {
            guard connection.deflate != nil else { return fail(1002, "no extension was negotiated") }
            guard frame.opcode == .text || frame.opcode == .binary else { return fail(1002, "RSV1 set on a non-first frame") }
        }
        switch frame.opcode {
        case .text, .binary:
            guard fragments == nil else { return fail(1002, "expected a continuation frame") }
            let kind: Payload.Kind = frame.opcode == .text ? .text : .binary
            if frame.fin {
                deliver(kind, compressed: frame.rsv1, frame.payload, context: context)
            } else {
                fragments = (kind, frame.rsv1, frame.payload)
            }
        case .continuation:
            guard case (let kind, let compressed, var bytes)? = fragments else {
                return fail(1002, "continuation frame without a message")
            }
            fragments = nil
            var more = frame.payload
            guard bytes.readableBytes + more.readableBytes <= maxMessageSize else { return fail(1009, "message too big") }
            bytes.writeBuffer(&more)
            if frame.fin {
                deliver(kind, compressed: compressed, bytes, context: context)
            } else {
                fragments = (kind, compressed, bytes)
            }
        case .ping:
            writer.pong(frame.payload)
        case .pong:
            // Only the answer to the latest ping counts; unsolicited pongs are allowed and ignored.
            if awaitingPong, frame.payload == pingTimer?.payload { awaitingPong = false }
        case .close:
            clientClosed = true
            // Echo the client's code (RFC 6455 §5.5.1); one that may not be sent is answered 1002.
            var body = frame.payload
            let code = body.readInteger(as: UInt16.self) ?? 1000
            let sendable = [1000...1003, 1007...1011, 3000...4999].contains { $0.contains(code) }
            writer.sendClose(Disconnect(code: sendable ? code : 1002, reason: ""), dropAfterWrite: true)
        case nil:
            fail(1002, "unknown opcode")
        }
    }

    private func deliver(_ kind: Payload.Kind, compressed: Bool, _ received: ByteBuffer, context: ChannelHandlerContext) {
        var bytes = received
        if compressed {
            do {
                bytes = try PerMessageDeflate.inflate(received, limit: maxMessageSize)
            } catch {
                switch error {
                case .tooBig: return fail(1009, "message too big")
                case .corrupt: return fail(1007, "invalid compressed data")
                case .unavailable: return fail(1011, "cannot inflate now")
                }
            }
        }
        guard bytes.readableBytes <= maxMessageSize else { return fail(1009, "message too big") }
        if kind == .text, String(validating: bytes.readableBytesView, as: UTF8.self) == nil {
            return fail(1007, "invalid UTF-8 in a text message")
        }
        let payload: Payload = kind == .text ? .text(utf8: bytes) : .binary(bytes)
        switch hooks {
        case .queued(let queue):
            if queue.enqueue(.message(payload)) {
                hooksPaused = true
                context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
            }
        case .now(let handler):
            guard hookFailure == nil else { return }
            connection.logMessage(payload)
            do {
                try handler.onMessageNow(connection, payload)
            } catch {
                hookFailed(error)
            }
        }
    }

    /// A hook threw: the connection ends with 1011 and no later message reaches the hooks.
    private func hookFailed(_ error: any Error) {
        hookFailure = error
        connection.logHookFailed(error)
        connection.close(.serverError)
    }

    private func fail(_ code: UInt16, _ reason: String) {
        let violation = ProtocolViolation(disconnect: Disconnect(code: code, reason: reason))
        self.violation = violation
        connection.logger.debug("WebSocket protocol violation", metadata: ["close": "\(violation)"])
        writer.sendClose(violation.disconnect)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        connection.logger.debug("WebSocket connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is FrameWriter.Flushed { return resumeIfDrained() }
        if event is HookQueue.Drained {
            hooksPaused = false
            if !paused { context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in } }
            return
        }
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)  // the client half-closed: nothing more will arrive
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let cause: CloseCause =
            if let hookFailure {
                .failed(hookFailure)
            } else if let violation {
                .failed(violation)
            } else if clientClosed {
                .clientClosed
            } else if let sent = writer.sentClose {
                .serverClosed(sent)
            } else {
                .clientClosed
            }
        connectionEnded(cause)
        context.fireChannelInactive()
    }

    private func connectionEnded(_ cause: CloseCause) {
        switch hooks {
        case .queued(let queue):
            _ = queue.enqueue(.close(cause))
        case .now(let handler):
            handler.onCloseNow(connection, cause)
            connection.logClosed(cause)
            pool.remove(connection)
        }
    }

    /// Called by the loop's ``PingTimer`` every ping interval: a client that has not answered
    /// the previous ping by now is gone (a dead peer, a silently dropped NAT mapping) and is
    /// dropped; otherwise it gets a new ping.
    func pingTick() {
        guard let context, context.channel.isActive, writer.sentClose == nil else { return }
        if awaitingPong {
            connection.logger.info("WebSocket client did not answer a ping: dropping it")
            context.close(promise: nil)
            return
        }
        awaitingPong = true
        writer.writeControl(WebSocketFrameBytes.frame(.ping, pingTimer?.payload ?? ByteBuffer()))
    }
}
