import NIOCore
import NIOHTTP1
import NIOWebSocket

/// The first handler of every accepted connection: it reads the first request's head and, when
/// that is a plain, well-formed WebSocket upgrade that a mount accepts, answers the handshake
/// itself; anything else — any other request, a refused or unusual upgrade, a head it cannot
/// read — goes to NIO's HTTP pipeline exactly as it arrived.
///
/// Why: on a server whose clients reconnect in waves, handshakes are the cost that matters, and
/// NIO's general HTTP upgrade machinery (a parser, an encoder, an upgrade handler and a chain of
/// futures, all built and torn down per connection) was a third of a handshake's CPU.
///
/// Contracts:
/// - The fast path only takes `GET` `HTTP/1.1` heads without a body, with `Upgrade: websocket`,
///   `Connection: upgrade`, exactly one `Sec-WebSocket-Key` and `Sec-WebSocket-Version: 13`,
///   ASCII only and at most ``maxHeadSize`` bytes. The only error it answers itself is an upgrade
///   that cannot succeed anywhere (a version other than 13, no single key); a mount's refusal is
///   answered on NIO's path, as a plain GET of the path would be.
/// - Bytes the client sent after the head (frames sent before the 101 arrived) reach the
///   WebSocket handler, in order.
/// - The connection opens before the 101 is written (see ``ConnectionSetup``).
/// - **Every socket ends.** A client that ends its side before its head is complete is closed;
///   so is one whose head is not complete within the handshake timeout; a request line longer
///   than ``maxHeadSize`` is answered 414 and closed.
final class HandshakeReader: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    /// Longest head the fast path reads; a longer one is NIO's to judge.
    static let maxHeadSize = 8192

    private let upgrade: ConnectionSetup
    private let accepted: NIOLoopBoundBox<ConnectionSetup.Accepted?>
    private let refusal: NIOLoopBoundBox<ConnectionSetup.Refusal?>
    private let result: EventLoopPromise<ConnectionSetup.UpgradeResult>
    private var buffered: ByteBuffer?
    private var decided = false
    /// The first request was answered with an error here; what follows is discarded.
    private var refused = false
    /// Closes the connection if no head is complete by ``deadline``.
    private var timeout: Scheduled<Void>?
    /// When the first head must be complete.
    let deadline: NIODeadline

    init(
        upgrade: ConnectionSetup,
        accepted: NIOLoopBoundBox<ConnectionSetup.Accepted?>,
        refusal: NIOLoopBoundBox<ConnectionSetup.Refusal?>,
        result: EventLoopPromise<ConnectionSetup.UpgradeResult>,
        deadline: NIODeadline
    ) {
        self.upgrade = upgrade
        self.accepted = accepted
        self.refusal = refusal
        self.result = result
        self.deadline = deadline
    }

    func handlerAdded(context: ChannelHandlerContext) {
        timeout = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }  // answered and closing: the rest is dropped
        guard !decided else { return context.fireChannelRead(data) }
        var bytes = unwrapInboundIn(data)
        // Taken out first, so that appending does not copy what has arrived so far.
        var head = buffered.take() ?? ByteBuffer()
        head.writeBuffer(&bytes)
        buffered = head
        guard let headLength = Self.headLength(head), headLength <= Self.maxHeadSize else {
            if head.readableBytes > Self.maxHeadSize {
                guard Self.hasLineEnd(head) else {
                    return refuse(.uriTooLong, uri: "-", context: context)
                }
                giveToNIO(context)
            }
            return
        }
        guard let first = head.getSlice(at: head.readerIndex, length: headLength) else { return giveToNIO(context) }
        switch Self.read(first) {
        case .upgrade(let request):
            guard let headers = upgrade.accept(request, on: context.channel, into: accepted, refusal: refusal) else {
                // A refusal is answered, with its JSON error, on NIO's path.
                refusal.value = nil
                return giveToNIO(context)
            }
            answer(request, headers: headers, headLength: headLength, context: context)
        case .malformedUpgrade(let error, let uri):
            refuse(error, uri: uri, context: context)
        case .other:
            giveToNIO(context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !decided {
            decided = true
            result.fail(ChannelError.eof)
        }
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard !decided || refused, let event = event as? ChannelEvent, event == .inputClosed else {
            return context.fireUserInboundEventTriggered(event)
        }
        guard !refused else { return context.close(promise: nil) }
        // The client ended its side before its first head was complete: nothing can be served.
        decided = true
        result.fail(ChannelError.eof)
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !decided else { return context.fireErrorCaught(error) }
        decided = true
        result.fail(error)
        context.close(promise: nil)
    }

    /// Writes the 101, installs the WebSocket handler, hands it what followed the head, and
    /// leaves the pipeline.
    private func answer(_ request: UpgradeRequest, headers: HTTPHeaders, headLength: Int, context: ChannelHandlerContext) {
        decided = true
        let channel = context.channel
        guard let opened = accepted.value else {
            // `accept` opened the connection before returning its headers.
            result.fail(NIOWebSocketUpgradeError.invalidUpgradeHeader)
            channel.close(promise: nil)
            return
        }
        accepted.value = nil
        var response = channel.allocator.buffer(capacity: 192)
        response.writeStaticString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Accept: ")
        response.writeString(WebSocketAccept.value(forKey: request.key.utf8))
        response.writeStaticString("\r\n")
        for (name, value) in headers {
            response.writeString(name)
            response.writeStaticString(": ")
            response.writeString(value)
            response.writeStaticString("\r\n")
        }
        response.writeStaticString("\r\n")
        context.writeAndFlush(NIOAny(response), promise: nil)
        do {
            try upgrade.install(opened, uri: request.head.uri, on: channel)
        } catch {
            opened.handler.abandon()
            result.fail(error)
            channel.close(promise: nil)
            return
        }
        if var rest = buffered {
            buffered = nil
            rest.moveReaderIndex(forwardBy: headLength)
            if rest.readableBytes > 0 { context.fireChannelRead(NIOAny(rest)) }
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        result.succeed(.webSocket)
    }

    /// Answers an upgrade that cannot succeed (RFC 6455 §4.2.2: an HTTP error, and for a version
    /// it does not speak, the one it does) and closes the connection. NIO's upgrader would only
    /// have dropped it.
    private func refuse(_ error: APIError, uri: String, context: ChannelHandlerContext) {
        decided = true
        refused = true
        buffered = nil
        let start = ContinuousClock.now
        let channel = context.channel
        context.writeAndFlush(NIOAny(error.closingResponse(allocator: channel.allocator))).whenComplete { _ in
            channel.closeLingering()
        }
        AccessLogMiddleware.log(
            status: error.status.code,
            method: "GET",
            uri: uri,
            remote: channel.remoteAddress?.hostDescription,
            since: start,
            logger: upgrade.logger
        )
        result.fail(ChannelError.outputClosed)
    }

    /// Sets up NIO's HTTP pipeline after this handler, replays what arrived, and leaves.
    private func giveToNIO(_ context: ChannelHandlerContext) {
        decided = true
        do {
            try upgrade.configureHTTP(on: context.channel, accepted: accepted, refusal: refusal, firstHeadDeadline: deadline).cascade(to: result)
        } catch {
            result.fail(error)
            context.close(promise: nil)
            return
        }
        if let bytes = buffered {
            buffered = nil
            context.fireChannelRead(NIOAny(bytes))
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    /// Whether the request line ends within the first ``maxHeadSize`` bytes of `buffer`.
    static func hasLineEnd(_ buffer: ByteBuffer) -> Bool {
        buffer.readableBytesView.prefix(maxHeadSize).contains(0x0A)
    }

    /// Bytes up to and including the blank line that ends the head, if it has all arrived.
    static func headLength(_ buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { bytes -> Int? in
            guard bytes.count >= 4 else { return nil }
            for index in 3..<bytes.count
            where bytes[index] == 0x0A && bytes[index - 1] == 0x0D && bytes[index - 2] == 0x0A && bytes[index - 3] == 0x0D {
                return index + 1
            }
            return nil
        }
    }

    /// What a first request head is, to the fast path.
    enum FirstRequest {
        /// A WebSocket upgrade the fast path takes (see the type's contract).
        case upgrade(UpgradeRequest)
        /// A WebSocket upgrade that cannot succeed: a version other than 13, or no single key.
        case malformedUpgrade(APIError, uri: String)
        /// Anything else: NIO's to read.
        case other
    }

    /// Reads the head byte by byte (it is all ASCII or it is not the fast path's): Swift's
    /// `String` algorithms work on grapheme clusters, and cost more than the whole handshake.
    static func read(_ bytes: ByteBuffer) -> FirstRequest {
        bytes.withUnsafeReadableBytes { raw -> FirstRequest in
            var cursor = 0
            /// The next line, without its CR LF; `nil` at the end.
            func nextLine() -> Range<Int>? {
                var index = cursor
                while index + 1 < raw.count {
                    if raw[index] == 0x0D, raw[index + 1] == 0x0A {
                        defer { cursor = index + 2 }
                        return cursor..<index
                    }
                    index += 1
                }
                return nil
            }
            func text(_ range: Range<Int>) -> String {
                String(decoding: UnsafeRawBufferPointer(rebasing: raw[range]), as: UTF8.self)
            }
            guard let requestLine = nextLine(), requestLine.count > Self.getPrefix.count + Self.versionSuffix.count,
                raw[requestLine].starts(with: Self.getPrefix), raw[requestLine].suffix(Self.versionSuffix.count).elementsEqual(Self.versionSuffix)
            else { return .other }
            let target = (requestLine.lowerBound + 4)..<(requestLine.upperBound - Self.versionSuffix.count)
            guard raw[target].allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return .other }

            var headers: [(String, String)] = []
            headers.reserveCapacity(12)
            var upgradesToWebSocket = false
            var connectionUpgrade = false
            var versions: [String] = []
            var keys: [String] = []
            var extensionOffers: [String] = []
            var hasBody = false
            while let line = nextLine(), !line.isEmpty {
                guard let colon = raw[line].firstIndex(of: UInt8(ascii: ":")), colon > line.lowerBound,
                    raw[line.lowerBound..<colon].allSatisfy(isTokenByte)
                else { return .other }
                var valueStart = colon + 1
                var valueEnd = line.upperBound
                while valueStart < valueEnd, raw[valueStart] == 0x20 || raw[valueStart] == 0x09 { valueStart += 1 }
                while valueEnd > valueStart, raw[valueEnd - 1] == 0x20 || raw[valueEnd - 1] == 0x09 { valueEnd -= 1 }
                guard raw[valueStart..<valueEnd].allSatisfy({ ($0 >= 0x20 && $0 < 0x7F) || $0 == 0x09 }) else { return .other }
                let name = raw[line.lowerBound..<colon]
                let value = raw[valueStart..<valueEnd]
                // The fields the fast path decides on, read as bytes: looking them up in
                // HTTPHeaders afterwards cost more than the rest of the parse.
                if Self.equalsIgnoringCase(name, "upgrade") {
                    upgradesToWebSocket = upgradesToWebSocket || Self.listContains(value, "websocket")
                } else if Self.equalsIgnoringCase(name, "connection") {
                    connectionUpgrade = connectionUpgrade || Self.listContains(value, "upgrade")
                } else if Self.equalsIgnoringCase(name, "sec-websocket-version") {
                    versions.append(text(valueStart..<valueEnd))
                } else if Self.equalsIgnoringCase(name, "sec-websocket-key") {
                    keys.append(text(valueStart..<valueEnd))
                } else if Self.equalsIgnoringCase(name, "sec-websocket-extensions") {
                    extensionOffers.append(text(valueStart..<valueEnd))
                } else {
                    if Self.equalsIgnoringCase(name, "content-length") {
                        hasBody = hasBody || !value.elementsEqual("0".utf8)
                    } else if Self.equalsIgnoringCase(name, "transfer-encoding") {
                        hasBody = true
                    }
                    // Kept for the connection's handlers (see UpgradeRequest).
                    headers.append((text(line.lowerBound..<colon), text(valueStart..<valueEnd)))
                }
            }
            let uri = text(target)
            guard !hasBody, upgradesToWebSocket, connectionUpgrade else { return .other }
            guard versions == ["13"] else {
                return .malformedUpgrade(.unsupportedWebSocketVersion(versions.joined(separator: ",")), uri: uri)
            }
            guard keys.count == 1 else { return .malformedUpgrade(.invalidWebSocketKey, uri: uri) }
            return .upgrade(
                UpgradeRequest(
                    head: HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders(headers)),
                    key: keys[0],
                    extensionOffers: extensionOffers
                )
            )
        }
    }

    /// Whether `bytes` are `lowercase` (ASCII letters in lower case), ignoring case.
    private static func equalsIgnoringCase(_ bytes: Slice<UnsafeRawBufferPointer>, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        return lowercase.withUTF8Buffer { expected in
            zip(bytes, expected).allSatisfy { byte, expected in byte | 0x20 == expected || byte == expected }
        }
    }

    /// Whether a comma-separated header value lists `lowercase`, ignoring case and whitespace.
    private static func listContains(_ value: Slice<UnsafeRawBufferPointer>, _ lowercase: StaticString) -> Bool {
        value.split(separator: UInt8(ascii: ",")).contains { element in
            var element = element[...]
            while let first = element.first, first == 0x20 || first == 0x09 { element = element.dropFirst() }
            while let last = element.last, last == 0x20 || last == 0x09 { element = element.dropLast() }
            return element.count == lowercase.utf8CodeUnitCount
                && lowercase.withUTF8Buffer { expected in zip(element, expected).allSatisfy { $0 | 0x20 == $1 || $0 == $1 } }
        }
    }

    private static let getPrefix: [UInt8] = Array("GET /".utf8)
    private static let versionSuffix: [UInt8] = Array(" HTTP/1.1".utf8)

    /// A byte of an HTTP token (RFC 9110 §5.6.2): a visible ASCII character other than a
    /// delimiter.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }
}
