// SPDX-License-Identifier: Apache-2.0

import NIOCore
import NIOHTTP2

/// Bounds an HTTP/2 connection where swift-nio-http2 and Hummingbird leave it open, placed on the
/// connection's pipeline right after its `NIOHTTP2Handler`:
///
/// | state | bound |
/// |---|---|
/// | ALPN chose h2, no stream opened yet (no preface, or a preface and nothing more) | the handshake deadline, from accept |
/// | a GOAWAY sent (idle timeout, shutdown) | the close timeout, whether or not the client acknowledges or closes |
///
/// Why: Hummingbird's connection manager closes an idle connection only once the client acks
/// the PING it sends with its GOAWAY, and a client that says nothing never does; nothing else
/// closes a connection that picked h2 and went silent.
///
/// Contracts: the first stream (``HTTP2StreamOpened`` tells it) cancels the handshake bound; the
/// first GOAWAY written starts the closing bound, which nothing cancels. Frames pass through
/// untouched. Loop-confined.
final class HTTP2ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private let firstStreamDeadline: NIODeadline
    private let closeTimeout: TimeAmount
    private var firstStreamTimer: Scheduled<Void>?
    private var closingTimer: Scheduled<Void>?

    init(firstStreamDeadline: NIODeadline, closeTimeout: TimeAmount) {
        self.firstStreamDeadline = firstStreamDeadline
        self.closeTimeout = closeTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        firstStreamTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: firstStreamDeadline) { context.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        firstStreamTimer?.cancel()
        closingTimer?.cancel()
    }

    /// A stream opened: the client has sent its first request.
    func streamOpened() {
        firstStreamTimer?.cancel()
        firstStreamTimer = nil
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if closingTimer == nil, case .goAway = unwrapOutboundIn(data).payload {
            closingTimer = context.eventLoop.assumeIsolated().scheduleTask(in: closeTimeout) { context.close(promise: nil) }
        }
        context.write(data, promise: promise)
    }
}

/// Added to every HTTP/2 stream: tells its connection's ``HTTP2ConnectionGuard`` that a stream
/// opened; everything else passes it by.
final class HTTP2StreamOpened: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    func handlerAdded(context: ChannelHandlerContext) {
        // A stream channel runs on its connection's event loop.
        if let connection = context.channel.parent, let guardian = try? connection.pipeline.syncOperations.handler(type: HTTP2ConnectionGuard.self) {
            guardian.streamOpened()
        }
    }
}

extension Channel {
    /// Refuses an HTTP/2 connection, as a server over its limits does: its SETTINGS, then a
    /// GOAWAY that took no stream (`REFUSED_STREAM`, so that the client may retry elsewhere or
    /// later) carrying `reason`, then the close; at `deadline` at the latest, whatever the
    /// client does.
    func refuseHTTP2(_ reason: String, deadline: NIODeadline) throws {
        let http2 = NIOHTTP2Handler(mode: .server, connectionConfiguration: .init())
        // The channel is active: the handler writes its SETTINGS as it is added.
        try pipeline.syncOperations.addHandler(http2)
        let goAway = HTTP2Frame(
            streamID: .rootStream,
            payload: .goAway(lastStreamID: .rootStream, errorCode: .refusedStream, opaqueData: allocator.buffer(string: reason))
        )
        let channel = self
        pipeline.syncOperations.writeAndFlush(NIOAny(goAway)).assumeIsolated().whenComplete { _ in channel.close(mode: .output, promise: nil) }
        eventLoop.scheduleTask(deadline: deadline) { channel.close(promise: nil) }
    }
}
