// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// Where a benchmark connects: a `ws://host:port/path` or `wss://host:port/path` URL.
public struct BenchTarget: Sendable, CustomStringConvertible {
    /// Whether the URL is `wss://`: every connection starts with a TLS handshake.
    public let secure: Bool
    /// Host to connect to (loopback for every benchmark Squall ships).
    public let host: String
    /// TCP port.
    public let port: Int
    /// Path and query sent in the upgrade request.
    public private(set) var path: String
    /// Offer permessage-deflate as browsers do (`permessage-deflate; client_max_window_bits`)
    /// and require the server to accept it. For idle runs: frames are not inflated.
    public var offersDeflate = false
    /// A subprotocol to ask for (`Sec-WebSocket-Protocol`), e.g. Squall's `squall.v1`.
    public var subprotocol: String?
    /// The upgrade request up to its key, built once.
    private(set) var upgradeRequestHead: [UInt8]
    /// The upgrade request after its key.
    var upgradeRequestTail: [UInt8] {
        let tail = offersDeflate ? Self.deflateTail : Self.plainTail
        guard let subprotocol else { return tail }
        return Array("\r\nSec-WebSocket-Protocol: \(subprotocol)".utf8) + tail
    }
    private static let plainTail = Array("\r\nSec-WebSocket-Version: 13\r\n\r\n".utf8)
    private static let deflateTail = Array(
        "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n".utf8
    )
    /// The host resolved once: resolving it per connection (NIO's happy-eyeballs connector)
    /// cost the generator more CPU per handshake than a server spends answering it.
    let address: SocketAddress

    /// Whether a host names this machine: load goes nowhere else, and no other name is even
    /// looked up.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Parses `ws://host:port/path` or `wss://…` and resolves its host; `nil` for anything
    /// else, a host not on this machine (``isLoopback(_:)``) or one that does not resolve.
    public init?(url: String) {
        if url.hasPrefix("ws://") {
            secure = false
        } else if url.hasPrefix("wss://") {
            secure = true
        } else {
            return nil
        }
        let rest = url.dropFirst(secure ? 6 : 5)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        path = slash == rest.endIndex ? "/" : String(rest[slash...])
        if let colon = authority.lastIndex(of: ":"), let port = Int(authority[authority.index(after: colon)...]) {
            host = String(authority[..<colon]).trimmingCharacters(in: ["[", "]"])
            self.port = port
        } else {
            host = String(authority)
            port = secure ? 443 : 80
        }
        guard Self.isLoopback(host), let address = try? SocketAddress.makeAddressResolvingHost(host, port: port) else { return nil }
        self.address = address
        upgradeRequestHead = Self.requestHead(path: path, authority: String(authority))
    }

    /// The same server, another path.
    func at(path: String) -> BenchTarget {
        var target = self
        target.path = path
        target.upgradeRequestHead = Self.requestHead(path: path, authority: authority)
        return target
    }

    /// `host:port`, as a `Host` header gives it.
    var authority: String { "\(host.contains(":") ? "[\(host)]" : host):\(port)" }

    private static func requestHead(path: String, authority: String) -> [UInt8] {
        Array("GET \(path) HTTP/1.1\r\nHost: \(authority)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ".utf8)
    }

    /// The URL.
    public var description: String { "\(secure ? "wss" : "ws")://\(host):\(port)\(path)" }

    /// The client side of TLS for `wss://` targets, made once. The certificate is not checked:
    /// targets are on this machine only, and what is measured is the handshake's and the
    /// records' cost, which checking a chain against a trust store would only add to on the
    /// client's side. Every connection makes a full handshake (no session resumption).
    static let tlsContext = Result {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        configuration.applicationProtocols = ["http/1.1"]
        return try NIOSSLContext(configuration: configuration)
    }
}

/// What a ``BenchSocket`` reports from its event loop.
protocol BenchSocketDelegate: AnyObject {
    /// The handshake completed.
    func opened(_ socket: BenchSocket)
    /// A whole data frame arrived (text or binary); `payload` is only valid during the call.
    func received(_ socket: BenchSocket, payload: ByteBufferView)
    /// All frames of one read have been handed over: a good moment to send more.
    func readComplete(_ socket: BenchSocket)
    /// The connection ended.
    func closed(_ socket: BenchSocket)
}

/// A minimal WebSocket client for load generation: it reads whatever the socket holds in one
/// go and walks the frames in place, with no per-frame allocation or task hop — a benchmark
/// client that did one async read per delivery would measure itself, not the server.
///
/// It speaks just enough RFC 6455 for the seed's broadcast contract: the upgrade, unfragmented
/// data frames both ways (masked when sent, as clients must), pongs for pings, and a close.
/// Everything happens on the channel's event loop: callers off the loop reach a socket only
/// through `loop.execute`/`submit`, which is why it may cross into those closures.
final class BenchSocket: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let target: BenchTarget
    private let delegate: any BenchSocketDelegate
    private var buffer = ByteBuffer()
    private var isOpen = false
    private(set) var context: ChannelHandlerContext?
    private var mask: [UInt8] = [0x37, 0xfa, 0x21, 0x3d]
    /// Pings the server sent and this socket answered.
    private(set) var pingsAnswered = 0

    init(target: BenchTarget, delegate: any BenchSocketDelegate) {
        self.target = target
        self.delegate = delegate
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        var random = SystemRandomNumberGenerator()
        let bits = random.next() as UInt32
        mask = [
            UInt8(truncatingIfNeeded: bits), UInt8(truncatingIfNeeded: bits >> 8), UInt8(truncatingIfNeeded: bits >> 16), UInt8(truncatingIfNeeded: bits >> 24),
        ]
        var request = context.channel.allocator.buffer(capacity: target.upgradeRequestHead.count + 128)
        request.writeBytes(target.upgradeRequestHead)
        request.writeBytes(Self.randomKey())
        request.writeBytes(target.upgradeRequestTail)
        context.writeAndFlush(wrapOutboundOut(request), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if !isOpen {
            buffer.writeBuffer(&incoming)
            // Bytes, not String algorithms: at thousands of handshakes a second, searching the
            // response as a String was a large share of the generator's CPU.
            guard let headLength = Self.headLength(buffer) else { return }
            let accepted = buffer.withUnsafeReadableBytes { head in
                head.starts(with: "HTTP/1.1 101".utf8)
                    && (!target.offersDeflate || Self.contains(head.prefix(headLength), "permessage-deflate"))
            }
            guard accepted else {
                context.close(promise: nil)
                return
            }
            buffer.moveReaderIndex(forwardBy: headLength)
            isOpen = true
            delegate.opened(self)
            parseFrames(&buffer, context: context)
        } else if buffer.readableBytes == 0 {
            // The common case: walk the read's own buffer, keeping only a partial frame.
            parseFrames(&incoming, context: context)
            if incoming.readableBytes > 0 { buffer.writeBuffer(&incoming) }
        } else {
            buffer.writeBuffer(&incoming)
            parseFrames(&buffer, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        buffer.discardReadBytes()
        if isOpen { delegate.readComplete(self) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.context = nil
        delegate.closed(self)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func parseFrames(_ buffer: inout ByteBuffer, context: ChannelHandlerContext) {
        while buffer.readableBytes >= 2 {
            let start = buffer.readerIndex
            guard let first = buffer.getInteger(at: start, as: UInt8.self),
                let second = buffer.getInteger(at: start + 1, as: UInt8.self)
            else { return }
            var headerLength = 2
            var length = Int(second & 0x7f)
            if length == 126 {
                guard let extended = buffer.getInteger(at: start + 2, as: UInt16.self) else { return }
                length = Int(extended)
                headerLength = 4
            } else if length == 127 {
                // A length no buffer could hold is a broken server: stop reading it.
                guard let extended = buffer.getInteger(at: start + 2, as: UInt64.self) else { return }
                guard let whole = Int(exactly: extended), whole <= Int(Int32.max) else { return context.close(promise: nil) }
                length = whole
                headerLength = 10
            }
            guard buffer.readableBytes >= headerLength + length else { return }
            let payload = buffer.readableBytesView[(start + headerLength)..<(start + headerLength + length)]
            switch first & 0x0f {
            case 0x1, 0x2:
                delegate.received(self, payload: payload)
            case 0x8:
                context.close(promise: nil)
            case 0x9:
                pingsAnswered += 1
                send(opcode: 0xA, payload: Array(payload), flush: true)
            default:
                break
            }
            buffer.moveReaderIndex(forwardBy: headerLength + length)
        }
    }

    /// Queues a masked text frame; `flush` sends everything queued.
    func sendText(_ bytes: [UInt8], flush: Bool) {
        send(opcode: 0x1, payload: bytes, flush: flush)
    }

    /// Sends a close frame and closes the connection.
    func close() {
        guard let context else { return }
        send(opcode: 0x8, payload: [0x03, 0xE8], flush: true)
        context.close(promise: nil)
    }

    private func send(opcode: UInt8, payload: [UInt8], flush: Bool) {
        guard let context else { return }
        var frame = context.channel.allocator.buffer(capacity: payload.count + 14)
        frame.writeInteger(0x80 | opcode)
        if payload.count < 126 {
            frame.writeInteger(UInt8(0x80 | payload.count))
        } else if payload.count <= 0xFFFF {
            frame.writeInteger(UInt8(0x80 | 126))
            frame.writeInteger(UInt16(payload.count))
        } else {
            frame.writeInteger(UInt8(0x80 | 127))
            frame.writeInteger(UInt64(payload.count))
        }
        frame.writeBytes(mask)
        for (index, byte) in payload.enumerated() {
            frame.writeInteger(byte ^ mask[index & 3])
        }
        if flush {
            context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        } else {
            context.write(wrapOutboundOut(frame), promise: nil)
        }
    }

    /// A `Sec-WebSocket-Key`: 16 random bytes in base64 (24 characters).
    static func randomKey() -> [UInt8] {
        var random = SystemRandomNumberGenerator()
        let bytes = withUnsafeBytes(of: (random.next() as UInt64, random.next() as UInt64)) { Data($0) }
        return Array(bytes.base64EncodedString().utf8)
    }

    /// The length of a response head, through its blank line, once it has all arrived.
    static func headLength(_ buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes(headLength(in:))
    }

    /// The length of a response head, through its blank line, once it has all arrived.
    static func headLength(in bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBytes(headLength(in:))
    }

    private static func headLength(in bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 3..<bytes.count
        where bytes[index] == 0x0A && bytes[index - 1] == 0x0D && bytes[index - 2] == 0x0A && bytes[index - 3] == 0x0D {
            return index + 1
        }
        return nil
    }

    /// Whether `bytes` contain `text`, ASCII case-insensitively.
    static func contains(_ bytes: UnsafeRawBufferPointer.SubSequence, _ text: String) -> Bool {
        let needle = Array(text.lowercased().utf8)
        guard bytes.count >= needle.count else { return false }
        let lowered = bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
        return (0...(lowered.count - needle.count)).contains { lowered[$0..<($0 + needle.count)].elementsEqual(needle) }
    }
}

/// Opens `count` sockets to `target` on `loop`, `concurrency` at a time; returns them once each
/// has completed its handshake. Fails if one cannot connect.
func openSockets(
    _ count: Int,
    to target: BenchTarget,
    on loop: any EventLoop,
    concurrency: Int = 64,
    delegate: @escaping @Sendable () -> any BenchSocketDelegate & Sendable
) async throws -> [BenchSocket] {
    var sockets: [BenchSocket] = []
    var next = 0
    while next < count {
        let batch = min(concurrency, count - next)
        let opened = try await withThrowingTaskGroup(of: BenchSocket.self) { group in
            for _ in 0..<batch {
                group.addTask { try await connect(target, on: loop, delegate: delegate()) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        sockets += opened
        next += batch
    }
    return sockets
}

/// Connects one socket and waits for its handshake.
func connect(_ target: BenchTarget, on loop: any EventLoop, delegate: any BenchSocketDelegate & Sendable) async throws -> BenchSocket {
    let handshake = loop.makePromise(of: Void.self)
    let waiter = HandshakeWaiter(inner: delegate, promise: handshake)
    let channel = try await ClientBootstrap(group: loop)
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                if target.secure {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: BenchTarget.tlsContext.get(), serverHostname: nil))
                }
                try channel.pipeline.syncOperations.addHandler(BenchSocket(target: target, delegate: waiter))
            }
        }
        .connect(to: target.address)
        .get()
    try await handshake.futureResult.get()
    return try await channel.pipeline.handler(type: BenchSocket.self).get()
}

/// Completes a promise on the handshake (or on close before it), then forwards everything.
private final class HandshakeWaiter: BenchSocketDelegate, @unchecked Sendable {
    // Touched only on the socket's event loop.
    private let inner: any BenchSocketDelegate
    private var promise: EventLoopPromise<Void>?

    init(inner: any BenchSocketDelegate, promise: EventLoopPromise<Void>) {
        self.inner = inner
        self.promise = promise
    }

    func opened(_ socket: BenchSocket) {
        promise?.succeed()
        promise = nil
        inner.opened(socket)
    }

    func received(_ socket: BenchSocket, payload: ByteBufferView) { inner.received(socket, payload: payload) }
    func readComplete(_ socket: BenchSocket) { inner.readComplete(socket) }

    func closed(_ socket: BenchSocket) {
        promise?.fail(BenchError.handshakeFailed)
        promise = nil
        inner.closed(socket)
    }
}

/// Why a benchmark could not run.
public enum BenchError: Error, CustomStringConvertible {
    /// The server refused or dropped a WebSocket upgrade.
    case handshakeFailed
    /// Subscribers did not all receive the warm-up message in time.
    case warmUpTimedOut
    /// The run did not finish within its time bound.
    case timedOut

    public var description: String {
        switch self {
        case .handshakeFailed: "the WebSocket handshake failed (is the URL a WebSocket endpoint? with --deflate: does it accept permessage-deflate?)"
        case .warmUpTimedOut: "not every subscriber received the warm-up message in time"
        case .timedOut: "the run did not finish within its time bound"
        }
    }
}
