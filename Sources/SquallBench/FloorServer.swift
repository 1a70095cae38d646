// SPDX-License-Identifier: Apache-2.0

import Hummingbird
import NIOCore
import NIOHTTP1
import NIOPosix

/// Measuring sticks for Squall's HTTP publishes: servers that answer
/// `POST /channels/{name}/messages` with an empty 201 and do nothing else — no origin, rate,
/// size or idempotency check, no publish, no store. What they cost per request is the floor of
/// their framework on this machine, measured with the same generator in the same run as
/// Squall (`benchmarks/http_publish.py`). They serve 127.0.0.1 only, on one event loop thread.
public enum FloorServer {
    /// Which floor.
    public enum Kind: String, Sendable, CaseIterable {
        /// An empty Hummingbird 2 handler: the framework Squall's HTTP routes run on.
        case hummingbird
        /// A SwiftNIO pipeline that decodes HTTP/1.1 and answers in the event loop, with no
        /// task per request: the least a fast path in front of Hummingbird could cost.
        case nio
    }

    /// Serves until the process is stopped.
    public static func run(_ kind: Kind, port: Int) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        switch kind {
        case .hummingbird:
            let router = Router()
            router.post("/channels/:name/messages") { request, _ -> HTTPResponse.Status in
                _ = try await request.body.collect(upTo: 1 << 20)
                return .created
            }
            let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), eventLoopGroupProvider: .shared(group))
            try await app.runService()
        case .nio:
            let server = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: true)
                        try channel.pipeline.syncOperations.addHandler(CreatedHandler())
                    }
                }
                .bind(host: "127.0.0.1", port: port)
                .get()
            try await server.closeFuture.get()
        }
    }

    /// Answers every request, once its body has arrived, with an empty 201.
    private final class CreatedHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            let head = HTTPResponseHead(version: .http1_1, status: .created, headers: ["Content-Length": "0"])
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
