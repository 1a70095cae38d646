// SPDX-License-Identifier: Apache-2.0

import NIOCore
import NIOHTTP1

/// Watches over one HTTP connection, between NIO's HTTP parser and everything after it, so that
/// no client can hold a socket, or memory, longer than the limits say:
///
/// | state | bound |
/// |---|---|
/// | waiting for the first request head, complete | `handshakeTimeout` from accept |
/// | idle between requests | `idleTimeout` |
/// | reading a request body | `bodyTimeout` |
/// | a response the client does not read (socket buffer full) | `writeTimeout` |
///
/// It also refuses early what would be read for nothing: a request whose `Content-Length` is over
/// the body limit gets 413 before any of the body is read; a head the parser refuses gets 400 (431
/// when it is too long) as JSON, and the connection closes.
///
/// Contracts:
/// - **Every socket ends.** A client that ends its side is closed at once when no request is in
///   flight; during one, the request's ``ClientDeparture`` fires (a parked poll is answered, an SSE
///   stream ends) and the connection closes once the response is written.
/// - **A response is not cut short.** A close asked for from behind (Hummingbird closes once
///   the client's side has ended and its handler returned) waits until every response's last
///   byte is with the kernel: NIO's close drops writes still queued, and a capped send buffer
///   leaves most of a large response queued. ``Limits/writeTimeout`` still bounds the wait.
/// - Loop-confined, like every channel handler.
final class HTTPConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// The bounds, from ``SquallConfiguration``.
    struct Limits {
        var handshakeTimeout: TimeAmount
        var idleTimeout: TimeAmount
        var bodyTimeout: TimeAmount
        var writeTimeout: TimeAmount
        var maxBodySize: Int
    }

    private let limits: Limits
    private let departures: ClientDepartures
    private var departure = ClientDeparture()
    /// Requests whose head has arrived and whose response has not been written to the end.
    private var inFlight = 0
    /// A request body is being read.
    private var readingBody = false
    private var inputClosed = false
    /// The connection was answered with an error and is closing: nothing more is read.
    private var refused = false
    /// When the connection is closed unless something re-arms it: ``NIODeadline/distantFuture``
    /// while a request is being answered.
    private var deadline = NIODeadline.distantFuture
    /// The one task that enforces ``deadline``, and when it fires. Re-arming for a later
    /// deadline leaves it be (it looks again when it fires, and goes back to sleep until the
    /// new deadline): a keep-alive connection's every request moves the deadline, and
    /// scheduling and cancelling a task each time was a measurable part of a request's cost.
    private var timer: Scheduled<Void>?
    private var timerFires = NIODeadline.distantFuture
    private var writeTimer: Scheduled<Void>?
    /// Responses whose last part is queued but not yet with the kernel.
    private var endsQueued = 0
    /// A close asked for while ``endsQueued`` was more than 0, made when it is 0.
    private var deferredClose: (mode: CloseMode, promise: EventLoopPromise<Void>?)?
    /// When the first head must be complete by: the connection's accept time plus the handshake
    /// timeout.
    private let firstHeadDeadline: NIODeadline

    init(limits: Limits, departures: ClientDepartures, firstHeadDeadline: NIODeadline) {
        self.limits = limits
        self.departures = departures
        self.firstHeadDeadline = firstHeadDeadline
    }

    func handlerAdded(context: ChannelHandlerContext) {
        departures.register(departure, for: context.channel)
        arm(deadline: firstHeadDeadline, context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        writeTimer?.cancel()
        departures.remove(context.channel)
    }

    func channelInactive(context: ChannelHandlerContext) {
        departure.depart()
        departures.remove(context.channel)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            disarm()
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > limits.maxBodySize {
                // Answered only when nothing else is: a 413 must not land inside another response.
                guard inFlight == 0 else { return context.close(promise: nil) }
                return refuse(.messageTooLarge(limit: limits.maxBodySize), context: context)
            }
            inFlight += 1
            departure = ClientDeparture()
            departures.register(departure, for: context.channel)
            if head.headers.contains(name: "transfer-encoding") || head.headers.first(name: "content-length").map({ $0 != "0" }) == true {
                readingBody = true
                arm(deadline: .now() + limits.bodyTimeout, context: context)
            }
        case .end:
            readingBody = false
            disarm()
            armIdleIfDone(context)
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return startWriteTimerIfStalled(context)
        }
        // A response is over once its last byte is with the kernel, not when it is queued.
        let written = promise ?? context.eventLoop.makePromise()
        endsQueued += 1
        context.write(data, promise: written)
        startWriteTimerIfStalled(context)
        written.futureResult.assumeIsolated().whenComplete { _ in
            self.inFlight = max(0, self.inFlight - 1)
            self.endsQueued -= 1
            if self.endsQueued == 0, let close = self.deferredClose {
                self.deferredClose = nil
                context.close(mode: close.mode, promise: close.promise)
            } else if self.inputClosed, self.inFlight == 0 {
                context.close(promise: nil)
            } else {
                self.armIdleIfDone(context)
            }
        }
    }

    /// The idle timer runs only when every request has been read and answered.
    private func armIdleIfDone(_ context: ChannelHandlerContext) {
        guard inFlight == 0, !readingBody, !refused else { return }
        arm(deadline: .now() + limits.idleTimeout, context: context)
    }

    private func startWriteTimerIfStalled(_ context: ChannelHandlerContext) {
        guard !context.channel.isWritable, writeTimer == nil else { return }
        writeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: limits.writeTimeout) {
            context.close(promise: nil)
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard endsQueued > 0, deferredClose == nil else { return context.close(mode: mode, promise: promise) }
        deferredClose = (mode, promise)
        context.flush()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            writeTimer?.cancel()
            writeTimer = nil
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            inputClosed = true
            guard inFlight > 0 else { return context.close(promise: nil) }
            departure.depart()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parseError = error as? HTTPParserError else { return context.fireErrorCaught(error) }
        guard !refused else { return }
        guard inFlight == 0 else { return context.close(promise: nil) }
        refuse(parseError == .headerOverflow ? .requestHeadTooLarge : .malformedRequest, context: context)
    }

    /// Answers `error` as JSON and closes the connection, reading nothing more.
    private func refuse(_ error: APIError, context: ChannelHandlerContext) {
        disarm()
        refused = true
        let body = error.jsonBody
        var headers = HTTPHeaders(error.headers.map { ($0.name.rawName, $0.value) })
        headers.add(name: "content-type", value: "application/json; charset=utf-8")
        headers.add(name: "content-length", value: "\(body.readableBytes)")
        headers.add(name: "connection", value: "close")
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: Int(error.status.code)), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            channel.closeLingering()
        }
        arm(deadline: .now() + limits.writeTimeout, context: context)
    }

    /// Closes the connection at `deadline` unless re-armed or disarmed first.
    private func arm(deadline: NIODeadline, context: ChannelHandlerContext) {
        self.deadline = deadline
        guard timer == nil || deadline < timerFires else { return }
        timer?.cancel()
        schedule(at: deadline, context: context)
    }

    /// No deadline until the next ``arm(deadline:context:)``; the task, if any, stays.
    private func disarm() {
        deadline = .distantFuture
    }

    private func schedule(at time: NIODeadline, context: ChannelHandlerContext) {
        timerFires = time
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: time) { [self] in
            timer = nil
            timerFires = .distantFuture
            if deadline <= .now() {
                context.close(promise: nil)
            } else if deadline != .distantFuture {
                schedule(at: deadline, context: context)
            }
        }
    }
}
