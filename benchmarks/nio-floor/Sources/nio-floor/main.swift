// SPDX-License-Identifier: Apache-2.0

import NIOCore
import NIOPosix

// `nio-floor PORT`: on 127.0.0.1, one event loop, one handler per connection that reads a
// request head, writes a fixed 101 (the accept value is not even computed), answers the close
// frame and closes. Nothing is routed, checked, kept or logged: what remains is SwiftNIO's own
// cost of a connection — accept, channel, pipeline, reads, writes, teardown.

final class FloorHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    static let response = Array(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n".utf8
    )
    private var upgraded = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        if !upgraded {
            // A generator's head arrives in one read; its last byte ends the blank line.
            guard bytes.readableBytesView.last == UInt8(ascii: "\n") else { return }
            upgraded = true
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: Self.response)), promise: nil)
        } else if let first = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self), first & 0x0F == 0x8 {
            let channel = context.channel
            context.writeAndFlush(NIOAny(channel.allocator.buffer(bytes: [0x88, 0x02, 0x03, 0xE8]))).whenComplete { _ in
                channel.close(promise: nil)
            }
        }
    }
}

guard CommandLine.arguments.count == 2, let port = Int(CommandLine.arguments[1]) else {
    fatalError("usage: nio-floor PORT")
}
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let server = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 256)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(FloorHandler()) }
    }
    .bind(host: "127.0.0.1", port: port)
    .wait()
try server.closeFuture.wait()
