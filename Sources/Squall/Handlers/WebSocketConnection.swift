// SPDX-License-Identifier: Apache-2.0

import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1
import NIOWebSocket
import SquallCore
import Synchronization

/// One client's WebSocket, as handed to a ``WebSocketHandler``'s hooks (Tornado's
/// `WebSocketHandler` instance: `self.write_message`, `self.close`, `self.request`).
///
/// Writing never waits: a message is queued for the connection's event loop, which writes
/// everything queued in one loop turn with one system call. What the client has not read yet
/// is bounded by its ``Outbox`` limits; a client that falls further behind is closed with 1008
/// and dropped after ``SquallConfiguration/closeTimeout``, so it cannot stall anyone else.
public final class WebSocketConnection: Sendable, Identifiable, Hashable, CustomStringConvertible {
    /// A random (version 4) UUID naming this connection in logs and to other clients.
    public let id: UUID
    /// The HTTP request that was upgraded: path, query and headers (its body is empty), without
    /// the handshake's own fields (`Upgrade`, `Connection`, `Sec-WebSocket-Key`,
    /// `Sec-WebSocket-Version`, `Sec-WebSocket-Extensions`), which mean nothing once the
    /// connection is open. Made from the kept request head (``UpgradeRequest``) on each use: an
    /// idle connection holds that rather than `HTTPFields`, which take several times the room.
    public var request: Request {
        // NIO's parser has checked the head; the fallback only guards against a field name
        // that HTTPTypes reads more strictly.
        let head = (try? HTTPRequest(head, secure: false, splitCookie: false)) ?? HTTPRequest(method: .get, scheme: nil, authority: nil, path: head.uri)
        return Request(head: head, body: RequestBody(buffer: ByteBuffer()))
    }
    /// The request's path and query, without building a whole ``request``.
    var uri: URI { URI(head.uri) }
    private let head: HTTPRequestHead
    /// The path parameters the mount path matched, e.g. `channel` for `/msg/{channel}`.
    public let parameters: Parameters
    /// The handler, pool and server logger this connection's mount shares with its others.
    let mounted: MountedHandler
    /// The queue its hooks run through, unless they run on the event loop.
    let queue: HookQueue?
    /// The error the open hook threw when it ran on the event loop: it is the end cause, and no
    /// message reaches the hooks. Only touched on the connection's event loop (hence unsafe).
    nonisolated(unsafe) var openFailure: (any Error)?
    /// A transport asked, during the message hook, that the socket not be read for now
    /// (``holdReading()``). Only touched on the connection's event loop (hence unsafe).
    nonisolated(unsafe) var readingHeld = false
    /// The TCP connection.
    let socket: any Channel
    let writer: FrameWriter
    /// The permessage-deflate options in effect, when the client negotiated the extension
    /// (messages from their minimum size up go to it compressed, and it may send compressed
    /// messages); `nil` when it did not.
    public let deflate: DeflateOptions?
    /// The window this client's messages are compressed with, when it negotiated the extension.
    let deflateWindow: DeflateWindow

    /// - Parameter head: the request head without the handshake-only fields (``UpgradeRequest``).
    init(
        head: HTTPRequestHead,
        parameters: Parameters,
        socket: any Channel,
        writer: FrameWriter,
        deflate: (options: DeflateOptions, window: DeflateWindow)?,
        id: UUID,
        client: IPAddress?,
        identity: ClientIdentity? = nil,
        mounted: MountedHandler
    ) {
        self.id = id
        self.client = client
        self.identity = identity
        self.deflate = deflate?.options
        self.deflateWindow = deflate?.window ?? .bits15
        self.head = head
        self.parameters = parameters
        self.socket = socket
        self.writer = writer
        self.mounted = mounted
        self.queue = mounted.nonBlocking == nil ? HookQueue(handler: mounted.handler) : nil
    }

    /// What handlers keep on the connection (``subscript(_:)``).
    private let storage = Mutex<[ObjectIdentifier: any Sendable]>([:])

    /// A value a handler keeps on this connection, under `key` — the per-connection state that
    /// Tornado keeps on `self`:
    ///
    /// ```swift
    /// enum Nickname: ConnectionStorageKey { typealias Value = String }
    /// connection[Nickname.self] = "ada"
    /// ```
    ///
    /// Safe from any hook; it lives as long as the connection.
    public subscript<Key: ConnectionStorageKey>(_ key: Key.Type) -> Key.Value? {
        get { storage.withLock { $0[ObjectIdentifier(key)] } as? Key.Value }
        set { storage.withLock { $0[ObjectIdentifier(key)] = newValue } }
    }

    /// A logger whose records carry this connection's id (`squall.connection`).
    public var logger: Logger {
        var logger = mounted.logger
        logger[metadataKey: "squall.connection"] = "\(id)"
        return logger
    }

    /// The upgrade request's headers, as the backend's hooks are shown them.
    var requestHeaders: [(name: String, value: String)] { head.headers.map { ($0.name, $0.value) } }

    /// The client's address, as the operating system reports it.
    public var remoteAddress: SocketAddress? { socket.remoteAddress }

    /// Whom the connection is from, as limits, rates and the access log see it (Tornado's
    /// `request.remote_ip` with `xheaders`): the peer, or — from a trusted proxy — the client
    /// it forwarded the upgrade for (``ClientAddresses``). `nil` for a peer without an IP.
    public let client: IPAddress?

    /// Who the client is, as the connection token it upgraded with says (`?token=` or
    /// `Authorization: Bearer` on Squall's own routes); `nil` for an anonymous client.
    public let identity: ClientIdentity?

    /// Queues `message` for this client (Tornado's `write_message`); never waits.
    ///
    /// - Returns: `false` if the message was dropped because the connection is closing. A
    ///   message that overflows the outbox is found out when its loop writes it: it is dropped
    ///   and the connection closes with 1008.
    @discardableResult
    public func writeMessage(_ message: Payload) -> Bool {
        guard compresses(payloadBytes: message.bytes.readableBytes) else {
            return writeFrame(WebSocketFrameBytes.frame(message))
        }
        return writeFrame(WebSocketFrameBytes.deflatedFrame(.init(message.kind), message.bytes, window: deflateWindow))
    }

    /// Queues a text message; see ``writeMessage(_:)-(Payload)``.
    @discardableResult
    public func writeMessage(_ text: String) -> Bool {
        writeMessage(.text(text))
    }

    /// Queues a broadcast `message` as `format`'s frame, compressed if this client negotiated
    /// permessage-deflate and the payload is big enough. Either frame is encoded once per
    /// message and shared with every other subscriber that gets the same one.
    @discardableResult
    func write<Format: FrameFormat>(_ message: Message, as format: Format.Type) -> Bool {
        if deflate != nil, compresses(payloadBytes: Format.content(of: message).payload.readableBytes) {
            writeFrame(message.deflatedFrame(Format.self, window: deflateWindow))
        } else {
            writeFrame(message.encoded(Format.self))
        }
    }

    /// Whether a message of `payloadBytes` goes to this client compressed: it negotiated
    /// permessage-deflate and the message reaches the configured minimum size.
    func compresses(payloadBytes: Int) -> Bool {
        deflate.map { payloadBytes >= $0.minimumSize } ?? false
    }

    /// Queues a frame encoded once and shared by many connections (a broadcast).
    @discardableResult
    func writeFrame(_ frame: ByteBuffer) -> Bool {
        guard !isClosing else { return false }
        writer.queuedBytes.add(frame.readableBytes, ordering: .relaxed)
        writer.coalescer.submit(.frame(frame), for: writer)
        return true
    }

    /// Closes the connection (Tornado's `close(code, reason)`): messages already queued are
    /// sent first, then the close frame. A client that has not completed the close handshake
    /// within ``SquallConfiguration/closeTimeout`` is dropped. Only the first close counts.
    public func close(code: WebSocketErrorCode = .normalClosure, reason: String = "") {
        close(Disconnect(code: UInt16(webSocketErrorCode: code), reason: reason))
    }

    /// Closes the connection with `disconnect`; see ``close(code:reason:)``.
    public func close(_ disconnect: Disconnect) {
        guard writer.closing.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        writer.coalescer.submit(.close(disconnect), for: writer)
    }

    /// Whether the connection is closing: closed by either side, or overflowed.
    public var isClosing: Bool { writer.closing.load(ordering: .relaxed) }

    /// `WebSocket <id> (<address>)`, as logged.
    public var description: String {
        "WebSocket \(id) (\(remoteAddress?.hostDescription ?? "unknown"))"
    }

    /// Connections are the same when their ids are.
    public static func == (lhs: WebSocketConnection, rhs: WebSocketConnection) -> Bool {
        lhs.id == rhs.id
    }

    /// Hashes the id.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(id)
    }
}

/// Names a value kept on a ``WebSocketConnection`` and gives its type.
public protocol ConnectionStorageKey {
    /// The type of the value kept.
    associatedtype Value: Sendable
}
