import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import SquallCore

/// One client's WebSocket, as handed to a ``WebSocketHandler``'s hooks (Tornado's
/// `WebSocketHandler` instance: `self.write_message`, `self.close`, `self.request`).
///
/// Every connection has a bounded ``Outbox``. Writing queues and returns at once; the
/// connection's own writer sends queued messages in order, as fast as the client reads. When a
/// client falls so far behind that its outbox overflows, it is closed with 1008 and dropped
/// after ``SquallConfiguration/closeTimeout``, so it cannot stall anyone else.
public final class WebSocketConnection: Sendable, Identifiable, Hashable, CustomStringConvertible {
    /// A random (version 4) UUID naming this connection in logs and to other clients.
    public let id: UUID
    /// The HTTP request that was upgraded: path, query and headers (its body is empty).
    public let request: Request
    /// The path parameters the mount path matched, e.g. `channel` for `/msg/{channel}`.
    public let parameters: Parameters
    /// The client's address, as the operating system reports it.
    public let remoteAddress: SocketAddress?
    /// A logger whose records carry this connection's id.
    public let logger: Logger
    /// What waits to be written to this client.
    let outbox: Outbox
    private let channel: any Channel
    private let closeTimeout: Duration

    init(request: Request, parameters: Parameters, channel: any Channel, outboxLimits: Outbox.Limits, closeTimeout: Duration, logger: Logger) {
        self.id = UUID()
        self.request = request
        self.parameters = parameters
        self.channel = channel
        self.remoteAddress = channel.remoteAddress
        self.outbox = Outbox(limits: outboxLimits)
        self.closeTimeout = closeTimeout
        var logger = logger
        logger[metadataKey: "squall.connection"] = "\(id)"
        self.logger = logger
    }

    /// Queues `message` for this client (Tornado's `write_message`); never waits.
    ///
    /// - Returns: `false` if the message was dropped because the connection is closing, or
    ///   because this message overflowed the outbox (which closes the connection with 1008).
    @discardableResult
    public func writeMessage(_ message: Payload) -> Bool {
        switch outbox.push(message) {
        case .queued:
            return true
        case .overflowed:
            logger.warning(
                "Closing slow WebSocket client: outbox overflow",
                metadata: [
                    "squall.outbox.max_messages": "\(outbox.limits.maxMessages)",
                    "squall.outbox.max_bytes": "\(outbox.limits.maxBytes)",
                ]
            )
            channel.close(after: closeTimeout)
            return false
        case .closed:
            return false
        }
    }

    /// Queues a text message; see ``writeMessage(_:)-(Payload)``.
    @discardableResult
    public func writeMessage(_ text: String) -> Bool {
        writeMessage(.text(text))
    }

    /// Closes the connection (Tornado's `close(code, reason)`): messages already queued are
    /// sent first, then the close frame. A client that has not completed the close handshake
    /// within ``SquallConfiguration/closeTimeout`` is dropped. Only the first close counts.
    public func close(code: WebSocketErrorCode = .normalClosure, reason: String = "") {
        close(Disconnect(code: UInt16(webSocketErrorCode: code), reason: reason))
    }

    /// Closes the connection with `disconnect`; see ``close(code:reason:)``.
    public func close(_ disconnect: Disconnect) {
        // A client that does not finish closing in time (it stopped reading, or vanished) is
        // cut off at the TCP level; the close frame may then never reach it.
        if outbox.close(disconnect) {
            channel.close(after: closeTimeout)
        }
    }

    /// Whether the server has begun to close this connection.
    public var isClosing: Bool { outbox.disconnect != nil }

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

    /// Writes what the outbox hands out until it closes: each batch, then the close frame.
    /// Ends quietly when the channel goes away under it.
    func writeOutbox(to outbound: WebSocketOutboundWriter) async {
        do {
            while let batch = await outbox.next() {
                switch batch {
                case .payloads(let payloads):
                    for payload in payloads {
                        let opcode: WebSocketOpcode = payload.kind == .text ? .text : .binary
                        try await outbound.write(.custom(WebSocketFrame(fin: true, opcode: opcode, data: payload.bytes)))
                    }
                case .disconnect(let disconnect):
                    try await outbound.close(
                        WebSocketErrorCode(codeNumber: Int(disconnect.code)),
                        reason: disconnect.reason.truncatedUTF8(maxBytes: 123)
                    )
                    return
                }
            }
        } catch {
            logger.debug("WebSocket write failed", metadata: ["error": "\(error)"])
        }
    }
}

extension Channel {
    /// Closes the TCP connection after `timeout`, whatever state it is in by then.
    func close(after timeout: Duration) {
        eventLoop.scheduleTask(in: TimeAmount(timeout)) { [self] in close(promise: nil) }
    }
}

extension String {
    /// The longest prefix of whole characters that fits in `maxBytes` of UTF-8.
    func truncatedUTF8(maxBytes: Int) -> String {
        guard utf8.count > maxBytes else { return self }
        var result = ""
        for character in self {
            guard result.utf8.count + character.utf8.count <= maxBytes else { break }
            result.append(character)
        }
        return result
    }
}
