// SPDX-License-Identifier: Apache-2.0

import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Bounds one HTTP/2 stream in time, as ``HTTPConnectionGuard`` bounds an HTTP/1.1 connection:
///
/// | state | bound |
/// |---|---|
/// | reading a request body | `bodyTimeout` from the request head |
/// | a response the client does not take (its flow-control window stays shut) | `writeTimeout` from when the stream stalls: not writable, or the response's end not yet sent |
///
/// Past either, the stream is reset (`RST_STREAM`), its handler sees the client leave, and the
/// connection and its other streams carry on. The connection's own bounds (handshake, idle,
/// stream count) are swift-nio-http2's and Hummingbird's.
///
/// Contracts: a request that sends no body (`END_STREAM` on its head) never arms the body timer;
/// the write timer runs only while the stream is stalled, and a response that leaves in time is
/// never cut. Loop-confined.
final class HTTP2StreamGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let bodyTimeout: TimeAmount
    private let writeTimeout: TimeAmount
    private var bodyTimer: Scheduled<Void>?
    private var writeTimer: Scheduled<Void>?
    /// The response's end is written to the stream but has not left it yet.
    private var endQueued = false

    init(bodyTimeout: TimeAmount, writeTimeout: TimeAmount) {
        self.bodyTimeout = bodyTimeout
        self.writeTimeout = writeTimeout
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        bodyTimer?.cancel()
        writeTimer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            // Armed until `.end`, which comes at once for a request without a body.
            bodyTimer = context.eventLoop.assumeIsolated().scheduleTask(in: bodyTimeout) { context.close(promise: nil) }
        case .end:
            bodyTimer?.cancel()
            bodyTimer = nil
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return armWriteTimerIfStalled(context)
        }
        // The response is taken once its end has left the stream for the connection, which
        // flow control holds back while the client's window is shut.
        let written = promise ?? context.eventLoop.makePromise()
        endQueued = true
        context.write(data, promise: written)
        armWriteTimerIfStalled(context)
        written.futureResult.assumeIsolated().whenComplete { _ in
            self.endQueued = false
            self.cancelWriteTimerIfMoving(context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            cancelWriteTimerIfMoving(context)
        } else {
            armWriteTimerIfStalled(context)
        }
        context.fireChannelWritabilityChanged()
    }

    /// Stalled: the stream is not writable, or its response's end waits for window.
    private func armWriteTimerIfStalled(_ context: ChannelHandlerContext) {
        guard !context.channel.isWritable || endQueued, writeTimer == nil else { return }
        writeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: writeTimeout) { context.close(promise: nil) }
    }

    private func cancelWriteTimerIfMoving(_ context: ChannelHandlerContext) {
        guard context.channel.isWritable, !endQueued else { return }
        writeTimer?.cancel()
        writeTimer = nil
    }
}
