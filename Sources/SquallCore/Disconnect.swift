// SPDX-License-Identifier: Apache-2.0

/// Why the server ends a connection: a code and a human-readable reason — and, as static
/// members, the registry of every one Squall sends (centrifuge's `disconnect.go`).
///
/// Codes follow WebSocket close codes (RFC 6455 §7.4) on every transport, so a client sees the
/// same code whether it was connected over WebSocket or anything else. Reasons are short
/// ASCII sentences: a WebSocket close frame carries at most 123 bytes of reason.
///
/// Contracts: Squall itself closes only with the values below (docs/protocol.md lists each
/// code, and a test holds the two to each other); codes never change meaning. A handler may
/// close with any code it likes (``init(code:reason:)``).
public struct Disconnect: Sendable, Hashable, CustomStringConvertible {
    /// The close code.
    public var code: UInt16
    /// Why, for people reading logs and close events.
    public var reason: String

    /// A disconnect with any code and reason.
    public init(code: UInt16, reason: String) {
        self.code = code
        self.reason = reason
    }

    /// `code reason`, as logged.
    public var description: String { reason.isEmpty ? "\(code)" : "\(code) \(reason)" }

    /// What a client should do after a close, told by its code's range (centrifuge's
    /// `disconnect.go` ranges; docs/protocol.md lists them and squall.js acts on them).
    public enum Advice: String, Sendable, CaseIterable {
        /// Reconnect with backoff and resume from the last position: 1000–3999 (WebSocket's and
        /// registered codes: a shutdown, a slow consumer, a failure) and 4010–4499.
        case reconnect
        /// Ask the application for a new token, then reconnect: 4000–4009.
        case refreshToken
        /// Do not reconnect: the server will refuse the same again. 4500–4999.
        case giveUp
    }

    /// What a client should do after this close.
    public var advice: Advice {
        switch code {
        case 4000...4009: .refreshToken
        case 4500...4999: .giveUp
        default: .reconnect
        }
    }
}

extension Disconnect {
    // MARK: 1000–1001: ordinary ends

    /// 1000: the application closed the connection on purpose.
    public static let normal = Disconnect(code: 1000, reason: "")
    /// The answer to a client's close frame: its own code back (RFC 6455 §5.5.1), 1000 when it
    /// sent none.
    public static func echo(_ code: UInt16) -> Disconnect { Disconnect(code: code, reason: "") }
    /// 1001: the server is shutting down; the client may reconnect to another node or later.
    public static let shutdown = Disconnect(code: 1001, reason: "server shutting down")

    // MARK: 1002: the client broke RFC 6455

    /// 1002: a client frame without a mask (§5.1).
    public static let unmaskedFrame = protocolError("client frames must be masked")
    /// 1002: RSV2 or RSV3 set; no extension Squall speaks uses them.
    public static let reservedBits = protocolError("reserved bits set")
    /// 1002: RSV1 set without permessage-deflate.
    public static let noExtensionNegotiated = protocolError("no extension was negotiated")
    /// 1002: RSV1 set on a continuation or control frame (RFC 7692 §6).
    public static let compressedControlOrContinuation = protocolError("RSV1 set on a non-first frame")
    /// 1002: a new data frame while a fragmented message is unfinished.
    public static let expectedContinuation = protocolError("expected a continuation frame")
    /// 1002: a continuation frame with no message to continue.
    public static let unexpectedContinuation = protocolError("continuation frame without a message")
    /// 1002: an opcode RFC 6455 does not define.
    public static let unknownOpcode = protocolError("unknown opcode")
    /// 1002: a 64-bit payload length with its top bit set.
    public static let invalidFrameLength = protocolError("invalid frame length")
    /// 1002: a control frame without FIN (§5.5).
    public static let fragmentedControlFrame = protocolError("fragmented control frame")
    /// 1002: a control frame with more than 125 bytes of payload (§5.5).
    public static let controlFrameTooLong = protocolError("control frame too long")
    /// 1002: a close frame whose payload is 1 byte: too short for a code (§5.5.1).
    public static let invalidCloseFrame = protocolError("close frame with a 1-byte payload")
    /// 1002: a close frame with a code that may not be sent (1005, 1006, below 1000, …).
    public static let invalidCloseCode = protocolError("invalid close code")

    private static func protocolError(_ reason: String) -> Disconnect { Disconnect(code: 1002, reason: reason) }

    // MARK: 1007–1011: bad messages, slow clients, failures

    /// 1007: a text message that is not UTF-8.
    public static let invalidUTF8 = Disconnect(code: 1007, reason: "invalid UTF-8 in a text message")
    /// 1007: a compressed message that does not inflate.
    public static let invalidCompressedData = Disconnect(code: 1007, reason: "invalid compressed data")
    /// 1007: a close frame whose reason is not UTF-8.
    public static let invalidCloseReason = Disconnect(code: 1007, reason: "close reason is not UTF-8")
    /// 1008: the client did not read fast enough and its outbox overflowed. Closing it keeps
    /// its backlog from stalling everyone else or growing memory without bound.
    public static let slowConsumer = Disconnect(code: 1008, reason: "slow consumer: outbox overflow")
    /// 1008: a `/msg` client kept publishing over the publish rate until its burst was used up;
    /// its frames have no reply to say so otherwise.
    public static let publishRateExceeded = Disconnect(code: 1008, reason: "publish rate exceeded")
    /// 1008: a client sent more than may wait while the backend's hooks decide whether to let
    /// it in.
    public static let earlyMessages = Disconnect(code: 1008, reason: "too many messages before the connection was let in")
    /// 1009: a message over the size limit, compressed or inflated.
    public static let messageTooBig = Disconnect(code: 1009, reason: "message too big")
    /// 1011: a handler failed while serving this connection.
    public static let serverError = Disconnect(code: 1011, reason: "internal server error")
    /// 1011: no decompressor could be had for a compressed message.
    public static let cannotInflate = Disconnect(code: 1011, reason: "cannot inflate now")
    /// 1011: the channel's log could not be read from the store in time; the client may retry.
    public static let storeUnavailable = Disconnect(code: 1011, reason: "store unavailable; retry later")
    /// 1013 (try again later): the backend's hook did not answer, so the connection could not be
    /// let in or renewed.
    public static let hookUnavailable = Disconnect(code: 1013, reason: "backend unavailable; retry later")

    // MARK: 4000–4999: Squall's own

    // 4000–4009: credentials. Get a (new) token from the application, then reconnect.

    /// 4001: no valid connection token where one is needed, or a `/ws` request before its
    /// `connect`. The reason says what was wrong.
    public static func unauthorized(_ why: String) -> Disconnect {
        Disconnect(code: 4001, reason: String("unauthorized: \(why)".utf8.prefix(123)) ?? "unauthorized")
    }
    /// 4002: the connection's token expired and no fresh one came (`/ws` `refresh`) before.
    public static let tokenExpired = Disconnect(code: 4002, reason: "token expired")
    /// 4003: the channel's namespace refuses this client (a `/msg` socket's subscribe or
    /// publish). The reason names the namespace and the rule.
    public static func permissionDenied(_ why: String) -> Disconnect {
        Disconnect(code: 4003, reason: String(why.utf8.prefix(123)) ?? "permission denied")
    }

    // 4010–4099: the position. Reconnect and resume from the last position.

    /// 4010: the client asked to resume from a position that is gone (another epoch, or older
    /// than retention). The reason carries the current position to start again from.
    public static func positionNotRecoverable(current: StreamPosition) -> Disconnect {
        Disconnect(code: 4010, reason: "position not recoverable; current \(current)")
    }

    /// 4011: the channel's log started again from the shared store's (this node fell behind past
    /// what the store retains, or the store forgot the channel after its meta TTL), so the
    /// client may have missed messages. It should reconnect and resume from its last position,
    /// which tells it whether that is recoverable.
    public static let logRestarted = Disconnect(code: 4011, reason: "channel log restarted; resume from your last position")

    // 4500–4999: do not reconnect.

    /// 4500: a backend disconnected the user through the server API, without a code of its own.
    public static let disconnectedByServer = Disconnect(code: 4500, reason: "disconnected by the server")
    /// 4503 unless the backend said another code: the backend's hook refused the connection, its
    /// renewal, its subscription (a `/msg` socket) or its publish (a `/msg` frame).
    public static func hookDenied(code: UInt16?, _ why: String) -> Disconnect {
        Disconnect(code: code ?? 4503, reason: String(why.utf8.prefix(123)) ?? "denied by the backend")
    }
    /// 4501: a backend took the user off the channel through the server API: a `/msg` socket
    /// or SSE stream, which is its channel, ends.
    public static let unsubscribedByServer = Disconnect(code: 4501, reason: "unsubscribed by the server")

    /// Every code Squall itself sends, each with an example of its disconnect.
    public static let registry: [Disconnect] = [
        .normal, .shutdown,
        .unmaskedFrame, .reservedBits, .noExtensionNegotiated, .compressedControlOrContinuation, .expectedContinuation,
        .unexpectedContinuation, .unknownOpcode, .invalidFrameLength, .fragmentedControlFrame, .controlFrameTooLong,
        .invalidCloseFrame, .invalidCloseCode,
        .invalidUTF8, .invalidCompressedData, .invalidCloseReason, .slowConsumer, .publishRateExceeded, .earlyMessages, .messageTooBig, .serverError,
        .cannotInflate,
        .storeUnavailable, .hookUnavailable,
        .unauthorized("a connection token is required"), .tokenExpired, .permissionDenied("namespace chat refuses this (publish: subscribers)"),
        .positionNotRecoverable(current: StreamPosition(epoch: "epoch", offset: 0)), .logRestarted, .disconnectedByServer,
        .unsubscribedByServer, .hookDenied(code: nil, "denied by the backend"),
    ]
}
