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

extension ConnectionSetup {
    /// NIO's HTTP server pipeline with its WebSocket upgrader, for every connection whose first
    /// request ``HandshakeReader`` does not answer: plain HTTP for Hummingbird's router, refused
    /// upgrades (answered with their JSON error), and upgrades too unusual for the fast path.
    ///
    /// The pipeline is NIO's, with an ``HTTPConnectionGuard`` after the parser (timeouts, early
    /// refusals, parse errors answered) and, in front of Hummingbird, the ``PublishFastPath``.
    func configureHTTP(
        on channel: any Channel,
        accepted: NIOLoopBoundBox<Accepted?>,
        refusal: NIOLoopBoundBox<Refusal?>,
        firstHeadDeadline: NIODeadline
    ) throws -> EventLoopFuture<UpgradeResult> {
        let upgrader = HandshakeUpgrader(
            handshake: NIOTypedWebSocketServerUpgrader<UpgradeResult>(
                shouldUpgrade: { channel, head in
                    let headers = self.accept(UpgradeRequest(head), on: channel, into: accepted, refusal: refusal)
                    if headers != nil, let guardian = try? channel.pipeline.syncOperations.handler(type: HTTPConnectionGuard.self) {
                        // HTTP ends here: NIO is about to hand on the bytes that followed the
                        // request, frames that the guard of HTTP parts must not see.
                        channel.pipeline.syncOperations.removeHandler(guardian, promise: nil)
                    }
                    return channel.eventLoop.makeSucceededFuture(headers)
                },
                upgradePipelineHandler: { channel, _ in channel.eventLoop.makeSucceededFuture(.webSocket) }
            ),
            install: { channel, head in
                channel.eventLoop.makeCompletedFuture {
                    guard let upgrade = accepted.value else { throw NIOWebSocketUpgradeError.unsupportedWebSocketTarget }
                    accepted.value = nil
                    try self.install(upgrade, uri: head.uri, on: channel)
                    return .webSocket
                }
            }
        )
        let upgrades = NIOTypedHTTPServerUpgradeConfiguration(
            upgraders: [upgrader],
            notUpgradingCompletionHandler: { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let fastPublish = self.fastPublish {
                        try channel.pipeline.syncOperations.addHandler(PublishFastPath(route: fastPublish))
                    }
                    try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: self.tls != nil))
                    // Quiescing on shutdown; the guard before it keeps the timeouts.
                    try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(logger: self.logger))
                    let http = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                        wrappingChannelSynchronously: channel,
                        configuration: .init(isOutboundHalfClosureEnabled: true)
                    )
                    return refusal.value.map { .refused(http, $0) } ?? .http(http)
                }
            }
        )
        var pipeline = NIOUpgradableHTTPServerPipelineConfiguration<UpgradeResult>(upgradeConfiguration: upgrades)
        pipeline.enablePipelining = false  // NIOAsyncChannel serves one request at a time
        pipeline.enableErrorHandling = false  // the guard answers parse errors
        pipeline.enableResponseHeaderValidation = false  // swift-http-types already validates
        let result = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: pipeline)
        let decoder = try channel.pipeline.syncOperations.context(handlerType: ByteToMessageHandler<HTTPRequestDecoder>.self)
        let guardian = HTTPConnectionGuard(
            limits: HTTPConnectionGuard.Limits(
                handshakeTimeout: TimeAmount(configuration.handshakeTimeout),
                idleTimeout: TimeAmount(configuration.idleTimeout),
                bodyTimeout: TimeAmount(configuration.bodyTimeout),
                writeTimeout: TimeAmount(configuration.writeTimeout),
                maxBodySize: configuration.maxMessageSize
            ),
            departures: departures,
            firstHeadDeadline: firstHeadDeadline
        )
        try channel.pipeline.syncOperations.addHandler(guardian, position: .after(decoder.handler))
        return result
    }
}

/// The WebSocket upgrade as NIO's HTTP server upgrade handler runs it: NIO's WebSocket upgrader
/// checks the request and answers the handshake (`Sec-WebSocket-Accept`), then Squall installs
/// its own handlers in place of NIO's frame decoder and encoder, which an idle connection
/// would otherwise carry only to have its frames parsed twice.
private struct HandshakeUpgrader: NIOTypedHTTPServerProtocolUpgrader {
    typealias UpgradeResult = ConnectionSetup.UpgradeResult

    let handshake: NIOTypedWebSocketServerUpgrader<UpgradeResult>
    let install: @Sendable (any Channel, HTTPRequestHead) -> EventLoopFuture<UpgradeResult>

    var supportedProtocol: String { handshake.supportedProtocol }
    var requiredUpgradeHeaders: [String] { handshake.requiredUpgradeHeaders }

    func buildUpgradeResponse(channel: any Channel, upgradeRequest: HTTPRequestHead, initialResponseHeaders: HTTPHeaders) -> EventLoopFuture<HTTPHeaders> {
        handshake.buildUpgradeResponse(channel: channel, upgradeRequest: upgradeRequest, initialResponseHeaders: initialResponseHeaders)
    }

    func upgrade(channel: any Channel, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<UpgradeResult> {
        install(channel, upgradeRequest)
    }
}
