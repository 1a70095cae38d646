// SPDX-License-Identifier: Apache-2.0

import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOSSL
import NIOWebSocket
import SquallCore

/// Each accepted TCP connection: HTTP/1.1 for Hummingbird's router, or — when the first request
/// asks to upgrade on a mounted path — a WebSocket served by plain NIO channel handlers. With
/// TLS, ``TLSAcceptor`` goes first and may choose HTTP/2 for the router instead.
///
/// An upgraded connection holds no task and no async channel: its ``FrameWriter``,
/// ``WebSocketFrameHandler`` and ``WebSocketConnection`` are its whole state, which is what
/// keeps an idle WebSocket at a few KiB and a broadcast at one system call per client per loop
/// turn. Hooks run on the event loop when they never wait (``NonBlockingWebSocketHandler``),
/// otherwise on Swift concurrency through the connection's ``HookQueue``, only when there is
/// something to run.
///
/// A refused upgrade (no mount matches, or the mount's check throws) is answered with the JSON
/// error a plain GET of the path gets, and the connection is closed.
final class ConnectionSetup: ServerChildChannel, HTTPChannelHandler {
    enum UpgradeResult: Sendable {
        /// The connection is a WebSocket now; its handlers serve it.
        case webSocket
        /// The connection stays HTTP.
        case http(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        /// The connection is HTTP/2, chosen by ALPN; its streams go to the router.
        case http2(HTTP2Channel.Value)
        /// The first request asked to upgrade and was refused with this error.
        case refused(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, Refusal)
    }

    /// Why an upgrade was refused, for the response and the access log.
    struct Refusal: Sendable {
        let error: APIError
        let uri: String
        let client: IPAddress?
        let start: ContinuousClock.Instant
    }

    struct Value: ServerChildChannelValue {
        let result: EventLoopFuture<UpgradeResult>
        let channel: any Channel
        /// The opened connection while its upgrade is under way.
        let accepted: NIOLoopBoundBox<Accepted?>
    }

    /// An upgrade accepted by a mount and opened, kept from the check to the pipeline switch.
    struct Accepted {
        let handler: WebSocketFrameHandler
        /// Whom the access log names: the peer, or the client a trusted proxy forwards for.
        let client: IPAddress?
        let start: ContinuousClock.Instant
    }

    let responder: HTTPChannelHandler.Responder
    let mounts: [WebSocketMount]
    let configuration: SquallConfiguration
    let departures: ClientDepartures
    /// The origins admitted now, among what may change while the server runs.
    let policy: LivePolicy
    /// Closes a connection when the token it upgraded with expires, whatever its mount.
    let expiring: ExpiringConnections
    /// Every identified user's connections, which the server API's `disconnect` closes.
    let users: ConnectedUsers
    /// Counts upgrades accepted and refused, for `/metrics`.
    let metrics: ServerMetrics
    let logger: Logger
    /// Counts connections against ``ConnectionLimits``.
    let admission: ConnectionAdmission
    /// Where refusals over those limits are logged, at most a line a second.
    let refusals: RefusalLog
    /// TLS before anything else, when the server is configured with it.
    let tls: TLSAcceptor?
    /// Plain publishes answered in the event loop, in front of Hummingbird (``PublishFastPath``).
    let fastPublish: PublishFastPath.Route?
    private let writerSettings: FrameWriter.Settings

    init(
        responder: @escaping HTTPChannelHandler.Responder,
        mounts: [WebSocketMount],
        configuration: SquallConfiguration,
        departures: ClientDepartures,
        policy: LivePolicy,
        admission: ConnectionAdmission,
        expiring: ExpiringConnections,
        users: ConnectedUsers,
        metrics: ServerMetrics,
        tls: TLSAcceptor?,
        logger: Logger,
        fastPublish: PublishFastPath.Route? = nil
    ) {
        self.fastPublish = fastPublish
        self.expiring = expiring
        self.users = users
        self.metrics = metrics
        self.tls = tls
        self.policy = policy
        self.responder = responder
        self.mounts = mounts
        self.configuration = configuration
        self.departures = departures
        self.logger = logger
        self.admission = admission
        self.refusals = RefusalLog(logger: logger)
        self.writerSettings = FrameWriter.Settings(
            limits: configuration.outbox,
            closeTimeout: configuration.closeTimeout,
            maxMessageSize: configuration.maxMessageSize,
            pingInterval: configuration.pingInterval,
            logger: logger
        )
    }

    /// `ServerChildChannel`'s entry point, as Hummingbird's server would call it; ``Listener``
    /// calls ``configure(_:)`` itself.
    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture { try configure(channel) }
    }

    /// Sets up a just-accepted connection, on its event loop: ``HandshakeReader`` reads its first
    /// request, after TLS when the server has it.
    func configure(_ channel: any Channel) throws -> Value {
        // NIO keeps each connection's last receive buffer for reuse, at the allocator's size,
        // for as long as the connection lives: 512 bytes takes a client library's upgrade
        // request in one read and is a quarter of NIO's default of 2 KiB. A browser's larger
        // request takes a second read into a 1 KiB buffer, which it then keeps; big messages
        // grow it further.
        try channel.syncOptions?.setOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65536))
        // A client that shuts down its side after a request still gets the response.
        try channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: true)
        if let size = configuration.limits.socketSendBuffer {
            try channel.syncOptions?.setOption(.socketOption(.so_sndbuf), value: SocketOptionValue(clamping: size))
        }
        let accepted = NIOLoopBoundBox<Accepted?>(nil, eventLoop: channel.eventLoop)
        let refusal = NIOLoopBoundBox<Refusal?>(nil, eventLoop: channel.eventLoop)
        let result = channel.eventLoop.makePromise(of: UpgradeResult.self)
        let peer = IPAddress(channel.remoteAddress)
        let overLimit: APIError?
        let deadline: NIODeadline
        switch admission.admit(peer) {
        case .admitted:
            overLimit = nil
            deadline = .now() + TimeAmount(configuration.handshakeTimeout)
            channel.closeFuture.assumeIsolated().whenComplete { [admission] _ in admission.release(peer) }
        case .refused(let error):
            // Answered at once (after TLS, if any) and gone within a second, whatever the
            // client does: refused connections must not hold the descriptors others need.
            overLimit = error
            deadline = .now() + ConnectionAdmission.refusalTime
            channel.closeFuture.assumeIsolated().whenComplete { [admission] _ in admission.releaseRefused() }
        case .dropped:
            channel.close(promise: nil)
            result.fail(ChannelError.ioOnClosedChannel)
            return Value(result: result.futureResult, channel: channel, accepted: accepted)
        }
        let readHandshake = { (channel: any Channel) in
            try channel.pipeline.syncOperations.addHandler(
                HandshakeReader(upgrade: self, accepted: accepted, refusal: refusal, result: result, deadline: deadline, overLimit: overLimit)
            )
        }
        if let tls {
            try tls.configure(channel, deadline: deadline, overLimit: overLimit, refusals: refusals, result: result, logger: logger, http1: readHandshake)
        } else {
            try readHandshake(channel)
        }
        return Value(result: result.futureResult, channel: channel, accepted: accepted)
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.result.get() {
            case .webSocket:
                return  // served by its channel handlers from now on
            case .http(let http):
                await handleHTTP(asyncChannel: http, logger: logger)
            case .http2(let connection):
                await tls?.serve(connection, logger: logger)
            case .refused(let http, let refusal):
                try await answer(refusal, on: http)
            }
        } catch {
            logger.debug("Connection ended before its first request was served", metadata: ["error": "\(error)"])
            let accepted = value.accepted
            let channel = value.channel
            channel.eventLoop.execute {
                accepted.value?.handler.abandon()
                accepted.value = nil
                channel.close(promise: nil)
            }
        }
    }

    /// The response headers for an upgrade a mount accepts, once the connection is open;
    /// `nil` refuses it, with the reason left in `refusal`.
    func accept(
        _ request: UpgradeRequest,
        on channel: any Channel,
        into accepted: NIOLoopBoundBox<Accepted?>,
        refusal: NIOLoopBoundBox<Refusal?>
    ) -> HTTPHeaders? {
        let start = ContinuousClock.now
        let head = request.head
        let uri = URI(head.uri)
        let client = configuration.clientAddresses.client(
            peer: IPAddress(channel.remoteAddress), forwarding: head.headers.forwarding(configuration.clientAddresses))
        do {
            if let origin = head.headers.first(name: "origin"), !policy.current.origins.admits(origin: origin, host: head.headers.first(name: "host")) {
                throw APIError.originNotAllowed(origin)
            }
            for mount in mounts {
                guard let parameters = mount.match(uri.path[...]) else { continue }
                let acceptance = try mount.check(head, uri, parameters, channel.remoteAddress, client)
                var headers = HTTPHeaders(acceptance.headers.map { ($0.name.rawName, $0.value) })
                let deflate = configuration.deflate.flatMap { options in
                    PerMessageDeflate.negotiate(request.extensionOffers).map { (options: options, agreement: $0) }
                }
                if let deflate {
                    headers.add(name: "Sec-WebSocket-Extensions", value: deflate.agreement.response)
                }
                let handler = try open(
                    mount,
                    head: head,
                    client: client,
                    identity: acceptance.identity,
                    parameters: parameters,
                    deflate: deflate.map { (options: $0.options, window: $0.agreement.window) },
                    on: channel
                )
                accepted.value = Accepted(handler: handler, client: client, start: start)
                metrics.accepted()
                return headers
            }
            throw APIError.notFound(uri.path)
        } catch {
            let error = error as? APIError ?? APIError(.invalidRequest, message: "malformed upgrade request")
            refusal.value = Refusal(error: error, uri: head.uri, client: client, start: start)
            return nil
        }
    }

    /// Answers a refused upgrade with its JSON error and closes the connection: the client
    /// expected a WebSocket, so nothing more will come on it that Squall could serve.
    private func answer(_ refusal: Refusal, on http: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>) async throws {
        // Counted here, where it is answered: the fast path's refusal is decided again on NIO's.
        metrics.refused(refusal.error.code)
        let body = refusal.error.jsonBody
        var fields = refusal.error.headers
        fields[.contentType] = "application/json; charset=utf-8"
        fields[.contentLength] = "\(body.readableBytes)"
        fields[.connection] = "close"
        try await http.executeThenClose { _, outbound in
            try await outbound.write(contentsOf: [.head(HTTPResponse(status: refusal.error.status, headerFields: fields)), .body(body), .end(nil)])
        }
        AccessLogMiddleware.log(
            status: refusal.error.status.code,
            method: "GET",
            uri: refusal.uri,
            remote: refusal.client?.description,
            since: refusal.start,
            logger: self.logger
        )
    }

    /// Opens the connection before the 101 response is written: ``FrameWriter`` goes first in
    /// the pipeline, after TLS if any (HTTP passes through it until the upgrade), and the connection joins its
    /// pool and runs its open hook. The writer holds back what is written to the connection
    /// until ``install(_:uri:on:)`` has seen the 101 written.
    private func open(
        _ mount: WebSocketMount,
        head: HTTPRequestHead,
        client: IPAddress?,
        identity: ClientIdentity?,
        parameters: Parameters,
        deflate: (options: DeflateOptions, window: DeflateWindow)?,
        on channel: any Channel
    ) throws -> WebSocketFrameHandler {
        let id = UUID.random()
        let writer = FrameWriter(loop: channel.eventLoop, settings: writerSettings, connectionID: id, deflate: deflate != nil)
        let tls = tls == nil ? nil : try channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
        try channel.pipeline.syncOperations.addHandler(writer, position: tls.map { .after($0) } ?? .first)
        let connection = WebSocketConnection(
            head: head,
            parameters: parameters,
            socket: channel,
            writer: writer,
            deflate: deflate,
            id: id,
            client: client,
            identity: identity,
            mounted: mount.mounted
        )
        let handler = WebSocketFrameHandler(writer: writer, sink: connection, maxMessageSize: configuration.maxMessageSize)
        if let until = identity?.validUntil {
            expiring.watch(connection, own: until, user: identity?.presenceUser)
            channel.closeFuture.assumeIsolated().whenComplete { [expiring] _ in expiring.forget(connection) }
        }
        if let user = identity?.presenceUser {
            users.add(connection, user: user)
            channel.closeFuture.assumeIsolated().whenComplete { [users] _ in users.remove(connection, user: user) }
        }
        connection.open()
        return handler
    }

    /// Replaces HTTP with the WebSocket handler once the 101 is written: it reads the
    /// socket's bytes itself, and ``FrameWriter`` writes whole frames.
    func install(_ upgrade: Accepted, uri: String, on channel: any Channel) throws {
        try channel.pipeline.syncOperations.addHandler(upgrade.handler)
        upgrade.handler.writer.release()
        AccessLogMiddleware.log(
            status: 101,
            method: "GET",
            uri: uri,
            remote: upgrade.client?.description,
            since: upgrade.start,
            logger: self.logger
        )
    }
}
