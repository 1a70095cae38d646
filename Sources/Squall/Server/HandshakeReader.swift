// SPDX-License-Identifier: Apache-2.0

import NIOCore
import NIOHTTP1
import NIOWebSocket
import SquallCore

/// The first handler of every accepted connection: it reads the first request's head and, when
/// that is a plain, well-formed WebSocket upgrade that a mount accepts, answers the handshake
/// itself; anything else — any other request, a refused or unusual upgrade, a head it cannot
/// read — goes to NIO's HTTP pipeline exactly as it arrived.
///
/// Why: on a server whose clients reconnect in waves, handshakes are the cost that matters, and
/// NIO's general HTTP upgrade machinery (a parser, an encoder, an upgrade handler and a chain of
/// futures, all built and torn down per connection) was a third of a handshake's CPU.
///
/// Contracts:
/// - The fast path only takes `GET` `HTTP/1.1` heads without a body, with `Upgrade: websocket`,
///   `Connection: upgrade`, exactly one `Sec-WebSocket-Key` and `Sec-WebSocket-Version: 13`,
///   ASCII only and at most ``maxHeadSize`` bytes. The only error it answers itself is an upgrade
///   that cannot succeed anywhere (a version other than 13, no single key); a mount's refusal is
///   answered on NIO's path, as a plain GET of the path would be.
/// - Bytes the client sent after the head (frames sent before the 101 arrived) reach the
///   WebSocket handler, in order.
/// - The connection opens before the 101 is written (see ``ConnectionSetup``).
/// - **Every socket ends.** A client that ends its side before its head is complete is closed;
///   so is one whose head is not complete within the handshake timeout; a request line longer
///   than ``maxHeadSize`` is answered 414 and closed.
/// - A connection over a ``ConnectionLimits`` limit is answered 503 at once, before it asks
///   anything, and closed within ``ConnectionAdmission/refusalTime``: nothing of it reaches a
///   mount or the router, and it holds its descriptor no longer than that.
/// - A trusted proxy's connection is counted against the client its first head is forwarded
///   for (``ClientAddresses``), and answered 503 if that client is over its share.
final class HandshakeReader: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let upgrade: ConnectionSetup
    private let accepted: NIOLoopBoundBox<ConnectionSetup.Accepted?>
    private let refusal: NIOLoopBoundBox<ConnectionSetup.Refusal?>
    private let result: EventLoopPromise<ConnectionSetup.UpgradeResult>
    private var buffered: ByteBuffer?
    private var decided = false
    /// The first request was answered with an error here; what follows is discarded.
    private var refused = false
    /// Closes the connection if no head is complete by ``deadline``.
    private var timeout: Scheduled<Void>?
    /// When the first head must be complete.
    let deadline: NIODeadline
    /// The connection is over a ``ConnectionLimits`` limit: its first request, whatever it is,
    /// gets this error once its head has arrived.
    let overLimit: APIError?

    init(
        upgrade: ConnectionSetup,
        accepted: NIOLoopBoundBox<ConnectionSetup.Accepted?>,
        refusal: NIOLoopBoundBox<ConnectionSetup.Refusal?>,
        result: EventLoopPromise<ConnectionSetup.UpgradeResult>,
        deadline: NIODeadline,
        overLimit: APIError? = nil
    ) {
        self.upgrade = upgrade
        self.accepted = accepted
        self.refusal = refusal
        self.result = result
        self.deadline = deadline
        self.overLimit = overLimit
    }

    func handlerAdded(context: ChannelHandlerContext) {
        timeout = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            context.close(promise: nil)
        }
        if let overLimit, context.channel.isActive { refuse(overLimit, method: "-", uri: "-", context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if let overLimit, !decided { refuse(overLimit, method: "-", uri: "-", context: context) }
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }  // answered and closing: the rest is dropped
        guard !decided else { return context.fireChannelRead(data) }
        var bytes = unwrapInboundIn(data)
        // Taken out first, so that appending does not copy what has arrived so far.
        var head = buffered.take() ?? ByteBuffer()
        head.writeBuffer(&bytes)
        buffered = head
        guard let headLength = WebSocketHandshake.headLength(head), headLength <= WebSocketHandshake.maxHeadSize else {
            if head.readableBytes > WebSocketHandshake.maxHeadSize {
                guard WebSocketHandshake.hasLineEnd(head) else {
                    return refuse(.uriTooLong, uri: "-", context: context)
                }
                giveToNIO(context)
            }
            return
        }
        guard let first = head.getSlice(at: head.readerIndex, length: headLength) else { return giveToNIO(context) }
        if let refusal = countForwardedClient(of: first, context: context) {
            let line = WebSocketHandshake.requestLine(first)
            return refuse(refusal, method: line?.method ?? "-", uri: line?.target ?? "-", context: context)
        }
        switch WebSocketHandshake.read(first) {
        case .upgrade(let request):
            guard let headers = upgrade.accept(request, on: context.channel, into: accepted, refusal: refusal) else {
                // A refusal is answered, with its JSON error, on NIO's path.
                refusal.value = nil
                return giveToNIO(context)
            }
            answer(request, headers: headers, headLength: headLength, context: context)
        case .malformedUpgrade(let error, let uri):
            upgrade.metrics.refused(APIError(error).code)
            refuse(APIError(error), uri: uri, context: context)
        case .other:
            giveToNIO(context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !decided {
            decided = true
            result.fail(ChannelError.eof)
        }
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard !decided || refused, let event = event as? ChannelEvent, event == .inputClosed else {
            return context.fireUserInboundEventTriggered(event)
        }
        guard !refused else { return context.close(promise: nil) }
        // The client ended its side before its first head was complete: nothing can be served.
        decided = true
        result.fail(ChannelError.eof)
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !decided else { return context.fireErrorCaught(error) }
        decided = true
        result.fail(error)
        context.close(promise: nil)
    }

    /// Writes the 101, installs the WebSocket handler, hands it what followed the head, and
    /// leaves the pipeline.
    private func answer(_ request: UpgradeRequest, headers: HTTPHeaders, headLength: Int, context: ChannelHandlerContext) {
        decided = true
        let channel = context.channel
        guard let opened = accepted.value else {
            // `accept` opened the connection before returning its headers.
            result.fail(NIOWebSocketUpgradeError.invalidUpgradeHeader)
            channel.close(promise: nil)
            return
        }
        accepted.value = nil
        let response = WebSocketHandshake.switchingProtocols(key: request.key, headers: headers, allocator: channel.allocator)
        context.writeAndFlush(NIOAny(response), promise: nil)
        do {
            try upgrade.install(opened, uri: request.head.uri, on: channel)
        } catch {
            opened.handler.abandon()
            result.fail(error)
            channel.close(promise: nil)
            return
        }
        if var rest = buffered {
            buffered = nil
            rest.moveReaderIndex(forwardBy: headLength)
            if rest.readableBytes > 0 { context.fireChannelRead(NIOAny(rest)) }
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        result.succeed(.webSocket)
    }

    /// A trusted proxy's connection: counts it against the client `head` is forwarded for, until
    /// it closes; or why that client may not have another.
    private func countForwardedClient(of head: ByteBuffer, context: ChannelHandlerContext) -> APIError? {
        let admission = upgrade.admission
        let peer = IPAddress(context.channel.remoteAddress)
        guard admission.addresses.isTrustedProxy(peer) else { return nil }
        let forwarding = ForwardingHeaders.value(of: admission.addresses.forwardingHeader.rawValue, in: head)
        guard let client = admission.addresses.client(peer: peer, forwarding: forwarding), client != peer else { return nil }
        if let refusal = admission.admitForwarded(client) { return refusal }
        context.channel.closeFuture.assumeIsolated().whenComplete { _ in admission.releaseForwarded(client) }
        return nil
    }

    /// Answers an upgrade that cannot succeed (RFC 6455 §4.2.2: an HTTP error, and for a version
    /// it does not speak, the one it does) and closes the connection. NIO's upgrader would only
    /// have dropped it.
    private func refuse(_ error: APIError, method: String = "GET", uri: String, context: ChannelHandlerContext) {
        decided = true
        refused = true
        buffered = nil
        let start = ContinuousClock.now
        let channel = context.channel
        let refusedAtAccept = overLimit != nil
        let deadline = self.deadline
        context.writeAndFlush(NIOAny(error.closingResponse(allocator: channel.allocator))).whenComplete { _ in
            // Over a limit, the descriptor is the point: kept no longer than the refusal's time.
            channel.closeLingering(until: refusedAtAccept ? deadline : .now() + .seconds(2))
        }
        if error.code == .tooManyConnections {
            upgrade.refusals.refused(status: Int(error.status.code), method: method, uri: uri, remote: channel.remoteAddress?.hostDescription, since: start)
        } else {
            AccessLogMiddleware.log(
                status: error.status.code,
                method: method,
                uri: uri,
                remote: channel.remoteAddress?.hostDescription,
                since: start,
                logger: upgrade.logger
            )
        }
        result.fail(RefusalAnswered())
    }

    /// Sets up NIO's HTTP pipeline after this handler, replays what arrived, and leaves.
    private func giveToNIO(_ context: ChannelHandlerContext) {
        decided = true
        do {
            try upgrade.configureHTTP(on: context.channel, accepted: accepted, refusal: refusal, firstHeadDeadline: deadline).cascade(to: result)
        } catch {
            result.fail(error)
            context.close(promise: nil)
            return
        }
        if let bytes = buffered {
            buffered = nil
            context.fireChannelRead(NIOAny(bytes))
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

/// How a connection's setup ends when it was refused with an HTTP answer: the answer is written
/// and the connection closes itself, lingering so the client can read it (`closeLingering`),
/// within the refusal's bound.
struct RefusalAnswered: Error {}
