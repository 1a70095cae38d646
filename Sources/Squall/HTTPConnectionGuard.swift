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
    /// A request's head has arrived and its response has not been written to the end.
    private var inFlight = false
    private var inputClosed = false
    /// The connection was answered with an error and is closing: nothing more is read.
    private var refused = false
    private var timer: Scheduled<Void>?
    private var writeTimer: Scheduled<Void>?
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
            timer?.cancel()
            timer = nil
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > limits.maxBodySize {
                return refuse(.messageTooLarge(limit: limits.maxBodySize), context: context)
            }
            inFlight = true
            departure = ClientDeparture()
            departures.register(departure, for: context.channel)
            if head.headers.contains(name: "transfer-encoding") || head.headers.first(name: "content-length").map({ $0 != "0" }) == true {
                arm(deadline: .now() + limits.bodyTimeout, context: context)
            }
        case .end:
            timer?.cancel()
            timer = nil
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let ends: Bool
        if case .end = unwrapOutboundIn(data) { ends = true } else { ends = false }
        context.write(data, promise: promise)
        if !context.channel.isWritable, writeTimer == nil {
            writeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: limits.writeTimeout) {
                context.close(promise: nil)
            }
        }
        guard ends else { return }
        inFlight = false
        if inputClosed {
            context.flush()
            context.close(promise: nil)
        } else {
            arm(deadline: .now() + limits.idleTimeout, context: context)
        }
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
            guard inFlight else { return context.close(promise: nil) }
            departure.depart()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parseError = error as? HTTPParserError else { return context.fireErrorCaught(error) }
        guard !refused else { return }
        guard !inFlight else { return context.close(promise: nil) }
        refuse(parseError == .headerOverflow ? .requestHeadTooLarge : .malformedRequest, context: context)
    }

    /// Answers `error` as JSON and closes the connection, reading nothing more.
    private func refuse(_ error: APIError, context: ChannelHandlerContext) {
        timer?.cancel()
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

    /// Closes the connection at `deadline` unless re-armed or cancelled first.
    private func arm(deadline: NIODeadline, context: ChannelHandlerContext) {
        timer?.cancel()
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            context.close(promise: nil)
        }
    }
}
