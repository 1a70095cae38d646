// SPDX-License-Identifier: Apache-2.0

import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOHTTP2
import NIOSSL
import NIOTLS

/// TLS on every accepted connection, then what ALPN chose: HTTP/2 for the router, or HTTP/1.1
/// — WebSocket upgrades and plain requests alike — through ``HandshakeReader``, exactly as a
/// connection without TLS.
///
/// Contracts:
/// - The handshake timeout counts from the accept: a client that has not completed its TLS
///   handshake by then is closed, and the rest of the timeout is its first head's (HTTP/1.1)
///   or its first stream's (HTTP/2, ``HTTP2ConnectionGuard``).
/// - A connection over a ``ConnectionLimits`` limit is refused as soon as ALPN has chosen:
///   HTTP/1.1 with a 503, HTTP/2 with a GOAWAY that took no stream (`REFUSED_STREAM`, the
///   reason as its debug data); both within ``ConnectionAdmission/refusalTime`` of the accept.
/// - An HTTP/2 connection that has sent its GOAWAY (idle, shutting down) is closed within the
///   close timeout, whether or not its client acknowledges.
/// - `h2` is chosen only when the client offers it and ``TLSFiles/http2`` is on; a client that
///   offers no ALPN, or only `http/1.1` (every WebSocket client), gets HTTP/1.1.
/// - An HTTP/2 stream's request reaches the same router as an HTTP/1.1 request; its stream
///   ending early (a reset, a closed tab) is its ``ClientDeparture``.
/// - A failed TLS handshake closes the connection; nothing of it reaches HTTP.
/// - Each connection handshakes with the certificate in use when it was accepted
///   (``TLSCredentials``: a reload swaps it for the next).
struct TLSAcceptor: Sendable {
    private let credentials: TLSCredentials
    private let http2: HTTP2Channel?
    private let closeTimeout: Duration

    /// TLS with `credentials`' context as it is at each accept.
    init(
        _ credentials: TLSCredentials,
        responder: @escaping HTTPChannelHandler.Responder,
        departures: ClientDepartures,
        idleTimeout: Duration,
        bodyTimeout: Duration,
        writeTimeout: Duration,
        closeTimeout: Duration
    ) {
        self.credentials = credentials
        self.closeTimeout = closeTimeout
        let files = credentials.files
        http2 =
            files.http2
            ? HTTP2Channel(
                responder: responder,
                configuration: HTTP2ChannelConfiguration(
                    idleTimeout: idleTimeout,
                    gracefulCloseTimeout: closeTimeout,
                    streamConfiguration: .init(additionalChannelHandlers: [
                        HTTP2StreamOpened(),
                        HTTP2StreamDeparture(departures: departures),
                        HTTP2StreamGuard(bodyTimeout: TimeAmount(bodyTimeout), writeTimeout: TimeAmount(writeTimeout)),
                    ])
                )
            ) : nil
    }

    /// Puts TLS first in `channel`'s pipeline; once ALPN has chosen, either completes `result`
    /// with the HTTP/2 connection or hands the channel to `http1` — or, with `overLimit`, refuses
    /// an HTTP/2 connection itself (an HTTP/1.1 one is refused by `http1`'s reader).
    func configure(
        _ channel: any Channel,
        deadline: NIODeadline,
        overLimit: APIError?,
        refusals: RefusalLog,
        result: EventLoopPromise<ConnectionSetup.UpgradeResult>,
        logger: Logger,
        http1: @escaping (any Channel) throws -> Void
    ) throws {
        let timeout = channel.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { channel.close(promise: nil) }
        channel.closeFuture.assumeIsolated().whenComplete { _ in
            timeout.cancel()
            result.fail(ChannelError.eof)  // a no-op once the connection was served
        }
        let http2 = self.http2
        let closeTimeout = TimeAmount(self.closeTimeout)
        let negotiation = ApplicationProtocolNegotiationHandler { alpn, channel in
            timeout.cancel()
            guard case .negotiated("h2") = alpn, let http2 else {
                return channel.eventLoop.makeCompletedFuture { try http1(channel) }
            }
            if let overLimit {
                let start = ContinuousClock.now
                return channel.eventLoop.makeCompletedFuture {
                    try channel.refuseHTTP2("\(overLimit.code): \(overLimit.message)", deadline: deadline)
                    refusals.refused(
                        status: Int(overLimit.status.code), method: "-", uri: "- (HTTP/2)", remote: channel.remoteAddress?.hostDescription, since: start)
                }
            }
            return http2.setup(channel: channel, logger: logger).flatMapThrowing { connection in
                // Until its first stream, the connection is held to the handshake deadline.
                let http2Handler = try channel.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self)
                try channel.pipeline.syncOperations.addHandler(
                    HTTP2ConnectionGuard(firstStreamDeadline: deadline, closeTimeout: closeTimeout), position: .after(http2Handler))
                result.succeed(.http2(connection))
            }
        }
        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: credentials.context))
        try channel.pipeline.syncOperations.addHandler(negotiation)
    }

    /// Serves an HTTP/2 connection's streams until it closes, each in a task of its own.
    func serve(_ connection: HTTP2Channel.Value, logger: Logger) async {
        await http2?.handle(value: connection, logger: logger)
    }
}

/// A PEM file of ``TLSFiles`` that could not be used.
public struct TLSFilesError: Error, CustomStringConvertible {
    /// The file's path.
    public let path: String
    /// What the file was to hold.
    public let what: String
    /// What NIOSSL reported.
    public let underlying: any Error

    public var description: String { "cannot use \(path) as the TLS \(what): \(underlying)" }
}
