// SPDX-License-Identifier: Apache-2.0

import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import SquallCore
import Synchronization

/// `POST /channels/{name}/messages` answered in the event loop, in front of Hummingbird: the
/// publish that backends make most, at a third of the CPU a request through Hummingbird's
/// router, middleware and per-connection task costs (docs/benchmarks.md).
///
/// It takes the plainest requests only — HTTP/1.1 keep-alive with a `Content-Length`, no query,
/// no `Origin`, `Expect`, `Authorization` or `Transfer-Encoding`, not from a trusted proxy, while
/// tokens are not in use and no publish hook is set for the channel, and while no other request
/// of the connection is in Hummingbird's hands — and hands every other request to Hummingbird
/// unchanged, where ``PollingTransport/publish(_:context:)`` serves it.
///
/// Contracts:
/// - **The same checks and answers** as ``PollingTransport/publish(_:context:)``, in the same
///   order: the channel name, `Idempotency-Key`, the namespace's publish rule, the publish rate,
///   the namespace's rate, the opening rate, the size, UTF-8; a refusal is the same JSON error,
///   counted for `/metrics` and the admin page as ``JSONErrorMiddleware`` counts it; the 201 goes
///   out once the hub has the message (with a store, after its commit); every request gets the
///   access log line ``AccessLogMiddleware`` writes, and the `Date` and `Server` headers.
/// - **In order.** Responses leave in request order: while this path answers, what the client
///   pipelines behind is held (and the socket not read), then taken in turn; while Hummingbird
///   answers, every request goes to it. ``HTTPConnectionGuard`` stays in front: timeouts, the
///   body limit, parse errors.
/// - **Nothing overtakes an answer.** What arrives while this path answers — parts of requests
///   pipelined behind, a request to quiesce, the client's end of input — waits (and the socket
///   is not read), then goes on in order; nothing more is taken once a response or request says
///   the connection closes, or once it has.
/// - Loop-confined, like every channel handler.
final class PublishFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// What every connection's fast path shares.
    struct Route: Sendable {
        let transport: PollingTransport
        /// The `Server` header, when the server sends one.
        let serverName: String?
        /// The access log's.
        let logger: Logger
        /// Told of each refusal, as ``JSONErrorMiddleware`` tells it: its code and the request.
        let refused: @Sendable (ErrorCode, String) -> Void
    }

    private struct Pending {
        let head: HTTPRequestHead
        /// The channel named in the path, or why it is not a channel name.
        let channel: Result<ChannelName, APIError>
        var body: ByteBuffer
        let start: ContinuousClock.Instant
        let client: IPAddress?
    }

    private enum State {
        case idle
        case collecting(Pending)
        case answering
    }

    /// What arrived while this path was answering, in order: request parts and events (a
    /// request to quiesce, the client's end of input), passed on once it has answered.
    private enum Held {
        case part(HTTPServerRequestPart)
        case event(Any)
    }

    private let route: Route
    private var state = State.idle
    /// Requests handed on to Hummingbird and not yet answered: while any is, this path takes
    /// none (responses must go out in request order).
    private var forwarded = 0
    /// A response or request said the connection closes after it: nothing more is taken here.
    private var closing = false
    private var held: [Held] = []
    private var readWanted = false
    /// Held items are being passed on: an answer made meanwhile leaves the rest to that pass.
    private var replaying = false

    init(route: Route) {
        self.route = route
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        guard isIdleOrCollecting, held.isEmpty else { return held.append(.part(part)) }
        take(part, context: context)
    }

    private func take(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch (state, part) {
        case (.collecting(var pending), .body(var chunk)):
            state = .idle  // the buffer is unique while it is appended to
            pending.body.writeBuffer(&chunk)
            state = .collecting(pending)
        case (.collecting(let pending), .end):
            state = .answering
            answer(pending, context: context)
        case (.idle, .head(let head)):
            if forwarded == 0, !closing, let pending = qualify(head, context: context) {
                state = .collecting(pending)
            } else {
                forwarded += 1
                if !head.isKeepAlive { closing = true }
                context.fireChannelRead(wrapInboundOut(part))
            }
        default:
            context.fireChannelRead(wrapInboundOut(part))
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "close" }): closing = true
        case .end: forwarded -= 1
        default: break
        }
        context.write(data, promise: promise)
    }

    func read(context: ChannelHandlerContext) {
        guard isIdleOrCollecting, held.isEmpty else {
            readWanted = true
            return
        }
        context.read()
    }

    /// Events keep their place among the parts: a client that ends its input after a publish
    /// still gets its answer first, and so do requests it sent before.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard isIdleOrCollecting, held.isEmpty else { return held.append(.event(event)) }
        context.fireUserInboundEventTriggered(event)
    }

    private var isIdle: Bool {
        if case .idle = state { return true }
        return false
    }

    private var isIdleOrCollecting: Bool {
        if case .answering = state { return false }
        return true
    }

    private static let prefix = "/channels/".utf8
    private static let suffix = "/messages".utf8

    private func qualify(_ head: HTTPRequestHead, context: ChannelHandlerContext) -> Pending? {
        guard head.method == .POST, head.version == .http1_1 else { return nil }
        let uri = head.uri.utf8
        guard uri.count > Self.prefix.count + Self.suffix.count, uri.starts(with: Self.prefix), uri.reversed().starts(with: Self.suffix.reversed())
        else { return nil }
        let start = uri.index(uri.startIndex, offsetBy: Self.prefix.count)
        let end = uri.index(uri.endIndex, offsetBy: -Self.suffix.count)
        let name = head.uri[start..<end]
        guard !name.utf8.contains(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) else { return nil }
        let headers = head.headers
        guard !headers.contains(name: "origin"), !headers.contains(name: "expect"), !headers.contains(name: "authorization"),
            !headers.contains(name: "transfer-encoding"), headers.contains(name: "content-length"), head.isKeepAlive
        else { return nil }
        let transport = route.transport
        let access = transport.policy.current.access
        guard access.keys.isEmpty, access.auth.mode == .optional else { return nil }
        let peer = IPAddress(context.channel.remoteAddress)
        guard !transport.configuration.clientAddresses.isTrustedProxy(peer) else { return nil }
        let channel = Result { () throws(APIError) in try APIError.channel(String(name)) }
        if case .success(let channel) = channel, transport.policy.hooks.url(.publish, channel: channel, in: access) != nil { return nil }
        return Pending(head: head, channel: channel, body: context.channel.allocator.buffer(capacity: 0), start: .now, client: peer)
    }

    private func answer(_ pending: Pending, context: ChannelHandlerContext) {
        let transport = route.transport
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        do throws(APIError) {
            let channel = try pending.channel.get()
            // Several fields are one value joined with ", ", as HTTPFields gives the router.
            let keys = pending.head.headers["idempotency-key"]
            let key = try PollingTransport.idempotencyKey(keys.isEmpty ? nil : keys.joined(separator: ", "))
            let maxSize = try transport.admitPublish(to: channel, by: nil, in: transport.policy.current.access, from: pending.client)
            guard pending.body.readableBytes <= maxSize else { throw APIError.messageTooLarge(limit: maxSize) }
            let payload = try PollingTransport.payload(pending.body, contentType: pending.head.headers.first(name: "content-type"))
            transport.hub.publish(payload, to: channel, idempotencyKey: key) { result in
                let reply: @Sendable () -> Void = {
                    let (handler, context) = bound.value
                    switch result {
                    case .success(let message):
                        handler.respond(.created, body: ProtocolReply.published(message, type: nil), pending: pending, context: context)
                    case .failure(let error):
                        handler.respond(APIError(error), pending: pending, context: context)
                    }
                }
                if loop.inEventLoop { reply() } else { loop.execute(reply) }
            }
        } catch {
            respond(error, pending: pending, context: context)
        }
    }

    private func respond(_ error: APIError, pending: Pending, context: ChannelHandlerContext) {
        route.refused(error.code, "POST \(pending.head.uri)")
        var headers = HTTPHeaders(error.headers.map { ($0.name.rawName, $0.value) })
        headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
        respond(HTTPResponseStatus(statusCode: Int(error.status.code)), body: error.jsonBody, headers: headers, pending: pending, context: context)
    }

    private func respond(
        _ status: HTTPResponseStatus, body: ByteBuffer, headers: HTTPHeaders = ["Content-Type": "application/json; charset=utf-8"],
        pending: Pending, context: ChannelHandlerContext
    ) {
        var headers = headers
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Date", value: DateHeader.now())
        if let server = route.serverName { headers.add(name: "Server", value: server) }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        AccessLogMiddleware.log(
            status: Int(status.code), method: "POST", uri: pending.head.uri, remote: pending.client?.description, since: pending.start,
            logger: route.logger)
        state = .idle
        // An answer made while held items are passed on (the store answered at once) leaves
        // the rest to that pass, which goes on after it.
        guard !replaying else { return }
        replaying = true
        defer { replaying = false }
        var passedOn = false
        while !held.isEmpty, isIdleOrCollecting, context.channel.isActive {
            switch held.removeFirst() {
            case .part(let part): take(part, context: context)
            case .event(let event): context.fireUserInboundEventTriggered(event)
            }
            passedOn = true
        }
        // Parts passed on outside a read reach Hummingbird's handler only with a read-complete.
        if passedOn { context.fireChannelReadComplete() }
        guard isIdleOrCollecting, held.isEmpty, readWanted else { return }
        readWanted = false
        context.read()
    }
}
