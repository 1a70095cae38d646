// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SquallCore

/// One WebSocket connection's life under RFC 6455, as a value: each event — a frame received,
/// a close asked for, a ping due, a hook that threw, an overflowing outbox, a close timeout, the
/// socket gone — returns the action to take (write, close with a code, drop), and the NIO
/// handlers (``WebSocketFrameHandler`` reading, ``FrameWriter`` writing) only carry actions out.
/// It touches no socket, so its tests drive it directly.
///
/// States: `upgrading` (opened, the 101 not yet written: writes are held back) → `open` →
/// `closeQueued` (the client broke the protocol: its close is decided, and goes out after what
/// was queued before it) → `closing` (a close frame is out: after the client's close, or on the
/// server's own) → `closed` (the socket is gone).
///
/// Contracts:
/// - **One close.** At most one close frame is sent; only the first close asked for counts.
/// - **Nothing after close.** Once a close frame is out, no data frame is written and no data
///   frame the client sends reaches the hooks; the client's answer to the server's close ends
///   the connection.
/// - **RFC 6455's close rules** (§5.5.1, §7.4): a client's close is echoed with its code; a
///   close frame with a 1-byte payload, or a code that may not be sent (1004–1006, 1015, below
///   1000, 1012–2999, 5000 and up) is answered 1002; a reason that is not UTF-8, 1007.
/// - **Messages whole and checked.** Data frames are reassembled, inflated when compressed, held
///   to the size limit (compressed and inflated) and, for text, to UTF-8; a violation closes
///   with its code (1002, 1007, 1009) and the violation becomes the connection's end cause.
/// - **What was queued before a violation goes first.** A violation stops reading at once, but
///   its close frame is queued behind what the server had queued for the client (the echo of
///   the valid message just before it), which RFC 6455 lets the server send first.
/// - **Text checked as it arrives.** Uncompressed text is checked for UTF-8 fragment by
///   fragment, and part by part while a frame arrives (``receivedPart(_:)``): invalid text
///   closes with 1007 at the piece it turns invalid in, not at the end of its message.
///   Compressed text can only be checked once inflated, whole.
/// - **Pings.** A client that has not answered the previous ping by the next is dropped; only a
///   pong echoing the latest ping's nonce answers it (unsolicited pongs are ignored).
struct WebSocketStateMachine {
    /// What the connection may do now.
    enum State {
        /// Opened; the 101 is not written yet.
        case upgrading
        /// Frames flow both ways.
        case open
        /// The client broke the protocol: nothing more is read, and the close (``Closing/sent``)
        /// goes out after what was queued before it.
        case closeQueued(Closing)
        /// A close frame is out (``Closing/sent``).
        case closing(Closing)
        /// The socket is gone.
        case closed
    }

    /// The close under way.
    struct Closing {
        /// The close frame sent.
        let sent: Disconnect
        /// Whether it answered the client's close (then the socket ends once it is written).
        let answeredClient: Bool
    }

    /// What to do with a received frame.
    enum FrameAction: Equatable {
        /// Nothing (a fragment kept, a pong, a frame after close).
        case none
        /// Hand this whole message to the hooks.
        case deliver(Payload)
        /// Answer a ping with a pong carrying `payload`.
        case pong(ByteBuffer)
        /// Send this close frame; the client has the close timeout to answer.
        case close(Disconnect)
        /// Send this close frame, then end the socket once it is written (the client closed).
        case answerClose(Disconnect)
        /// End the socket now (the client answered the server's close).
        case drop
    }

    /// What to do when a close is asked for.
    enum CloseAction: Equatable {
        /// Nothing: the connection is closing or closed already.
        case none
        /// Send this close frame; the client has the close timeout to answer.
        case close(Disconnect)
        /// Queue this close frame behind what is queued for the client; then as `close`.
        case queue(Disconnect)
    }

    /// What to do when a ping is due.
    enum PingAction: Equatable {
        /// Nothing: the connection is not open.
        case none
        /// Send a ping carrying this nonce.
        case ping(UInt64)
        /// End the socket: the client did not answer the previous ping.
        case drop
    }

    /// What to do with a frame the server wants to write.
    enum WriteAction: Equatable {
        /// Write it now.
        case write
        /// Keep it, in order, until the 101 is written.
        case hold
        /// Discard it: a close frame is out.
        case discard
    }

    /// Why the server failed a connection: the close it sent. The end cause of a connection
    /// closed for breaking the protocol.
    struct ProtocolViolation: Error, CustomStringConvertible, Equatable {
        let disconnect: Disconnect
        var description: String { "\(disconnect)" }
    }

    private(set) var state: State = .upgrading
    /// The message being reassembled from fragments.
    private var fragments: (kind: Payload.Kind, compressed: Bool, bytes: ByteBuffer)?
    /// The uncompressed text message under way, checked so far.
    private var text: UTF8Validator?
    /// How many payload bytes of the frame still arriving were checked as parts.
    private var checkedOfFrame = 0
    /// The nonce of the ping not answered yet.
    private var awaitingPong: UInt64?
    /// A protocol violation or a hook's error: the end cause that wins over the others.
    private var failure: (any Error)?
    /// The client left a ping unanswered for a whole interval: it is dropped.
    private var pingTimedOut = false
    let maxMessageSize: Int
    /// permessage-deflate was negotiated: RSV1 marks a compressed message.
    let deflate: Bool

    init(maxMessageSize: Int, deflate: Bool) {
        self.maxMessageSize = maxMessageSize
        self.deflate = deflate
    }

    /// The close frame sent, once one is.
    var sentClose: Disconnect? {
        if case .closing(let closing) = state { closing.sent } else { nil }
    }

    /// Whether the connection reads no more frames: a close is out or decided.
    var isClosing: Bool {
        switch state {
        case .closeQueued, .closing, .closed: true
        case .upgrading, .open: false
        }
    }

    // MARK: - Events

    /// The 101 is written: held writes go out now, in order.
    mutating func upgraded() {
        if case .upgrading = state { state = .open }
    }

    /// The server wants to write a data frame (or a pong).
    func write() -> WriteAction {
        switch state {
        case .upgrading: .hold
        case .open, .closeQueued: .write
        case .closing, .closed: .discard
        }
    }

    /// A frame arrived from the client.
    mutating func received(_ frame: ClientFrame) -> FrameAction {
        switch state {
        case .closing(let closing):
            // Closing: only the client's answer to the server's close matters now.
            return frame.opcode == .close && !closing.answeredClient ? .drop : .none
        case .closeQueued, .closed:
            return .none
        case .upgrading, .open:
            break
        }
        let checked = checkedOfFrame
        checkedOfFrame = 0
        guard frame.masked else { return violated(.unmaskedFrame) }
        guard !frame.rsv2or3 else { return violated(.reservedBits) }
        // RSV1 marks a compressed message: only with permessage-deflate, only on a first frame.
        if frame.rsv1 {
            guard deflate else { return violated(.noExtensionNegotiated) }
            guard frame.opcode == .text || frame.opcode == .binary else { return violated(.compressedControlOrContinuation) }
        }
        switch frame.opcode {
        case .text, .binary:
            guard fragments == nil else { return violated(.expectedContinuation) }
            let kind: Payload.Kind = frame.opcode == .text ? .text : .binary
            if kind == .text, !frame.rsv1 {
                if checked == 0 { text = UTF8Validator() }
                guard check(frame.payload, after: checked) else { return violated(.invalidUTF8) }
            }
            guard frame.fin else {
                fragments = (kind, frame.rsv1, frame.payload)
                return .none
            }
            return message(kind, compressed: frame.rsv1, frame.payload)
        case .continuation:
            guard case (let kind, let compressed, var bytes)? = fragments else { return violated(.unexpectedContinuation) }
            fragments = nil
            guard bytes.readableBytes + frame.payload.readableBytes <= maxMessageSize else { return violated(.messageTooBig) }
            if kind == .text, !compressed, !check(frame.payload, after: checked) { return violated(.invalidUTF8) }
            var more = frame.payload
            bytes.writeBuffer(&more)
            guard frame.fin else {
                fragments = (kind, compressed, bytes)
                return .none
            }
            return message(kind, compressed: compressed, bytes)
        case .ping:
            return .pong(frame.payload)
        case .pong:
            var payload = frame.payload
            if let nonce = awaitingPong, payload.readableBytes == 8, payload.readInteger(as: UInt64.self) == nonce {
                awaitingPong = nil
            }
            return .none
        case .close:
            return closeReceived(frame.payload)
        case nil:
            return violated(.unknownOpcode)
        }
    }

    /// Whether the bytes of a frame still arriving should be looked at (``receivedPart(_:)``):
    /// those of uncompressed text, which can be checked as they come.
    func wantsPart(_ opcode: WebSocketFrameBytes.Opcode?, rsv1: Bool) -> Bool {
        guard case .open = state, !rsv1 else { return false }
        switch opcode {
        case .text: return fragments == nil
        case .continuation: return fragments.map { $0.kind == .text && !$0.compressed } ?? false
        default: return false
        }
    }

    /// Part of a frame arrived, the rest not yet: uncompressed text is checked now.
    mutating func receivedPart(_ part: PartialFrame) -> FrameAction {
        guard wantsPart(part.opcode, rsv1: part.rsv1) else { return .none }
        if part.opcode == .text, checkedOfFrame == 0 { text = UTF8Validator() }
        checkedOfFrame += part.newBytes.readableBytes
        return text?.feed(part.newBytes) == false ? violated(.invalidUTF8) : .none
    }

    /// Checks the bytes of `payload` after its first `checked` (which parts checked already).
    private mutating func check(_ payload: ByteBuffer, after checked: Int) -> Bool {
        guard
            let rest = payload.getSlice(
                at: payload.readerIndex + min(checked, payload.readableBytes), length: payload.readableBytes - min(checked, payload.readableBytes))
        else { return false }
        return text?.feed(rest) ?? false
    }

    /// The byte stream cannot be read as frames any more.
    mutating func parseFailed(_ failure: WebSocketFrameParser.Failure) -> CloseAction {
        fail(ProtocolViolation(disconnect: failure.disconnect))
    }

    /// The server closes the connection with `disconnect`: a handler's `close`, shutdown; or
    /// the writer reaches a close queued for a violation, which is the one sent.
    mutating func close(_ disconnect: Disconnect) -> CloseAction {
        switch state {
        case .upgrading, .open:
            state = .closing(Closing(sent: disconnect, answeredClient: false))
            fragments = nil
            text = nil
            return .close(disconnect)
        case .closeQueued(let queued):
            state = .closing(queued)
            return .close(queued.sent)
        case .closing, .closed:
            return .none
        }
    }

    /// Graceful shutdown: 1001.
    mutating func shutdown() -> CloseAction {
        close(.shutdown)
    }

    /// A hook threw: 1011, and the error is the connection's end cause.
    mutating func hookFailed(_ error: any Error) -> CloseAction {
        fail(error, .serverError)
    }

    /// The client's outbox overflowed: 1008.
    mutating func outboxOverflowed() -> CloseAction {
        close(.slowConsumer)
    }

    /// The ping interval came round; `nonce` is this round's.
    mutating func pingDue(nonce: UInt64) -> PingAction {
        guard case .open = state else { return .none }
        guard awaitingPong == nil else {
            pingTimedOut = true
            return .drop
        }
        awaitingPong = nonce
        return .ping(nonce)
    }

    /// The close timeout after the server's close frame ran out.
    func closeTimedOut() -> Bool {
        if case .closed = state { false } else { true }
    }

    /// The socket is gone: the connection's end cause.
    mutating func socketClosed() -> CloseCause {
        let previous = state
        state = .closed
        fragments = nil
        text = nil
        if pingTimedOut { return .pingTimedOut }
        if let failure { return .failed(failure) }
        switch previous {
        case .closing(let closing), .closeQueued(let closing): return closing.answeredClient ? .clientClosed : .serverClosed(closing.sent)
        case .upgrading, .open, .closed: return .clientClosed
        }
    }

    // MARK: - Rules

    private mutating func message(_ kind: Payload.Kind, compressed: Bool, _ received: ByteBuffer) -> FrameAction {
        var bytes = received
        if compressed {
            do {
                bytes = try PerMessageDeflate.inflate(received, limit: maxMessageSize)
            } catch {
                switch error {
                case .tooBig: return violated(.messageTooBig)
                case .corrupt: return violated(.invalidCompressedData)
                case .unavailable: return violated(.cannotInflate)
                }
            }
        }
        guard bytes.readableBytes <= maxMessageSize else { return violated(.messageTooBig) }
        if kind == .text {
            // Uncompressed text was checked as it arrived; compressed text, now it is inflated.
            if compressed {
                text = UTF8Validator()
                text?.feed(bytes)
            }
            guard text?.isComplete == true else { return violated(.invalidUTF8) }
            text = nil
        }
        return .deliver(kind == .text ? .text(utf8: bytes) : .binary(bytes))
    }

    /// The client's close frame: echoed, unless it breaks §5.5.1 — then answered with the
    /// violation's code. Either way the socket ends once the answer is written.
    private mutating func closeReceived(_ payload: ByteBuffer) -> FrameAction {
        var body = payload
        let code = body.readInteger(as: UInt16.self)
        let violation: Disconnect? =
            if payload.readableBytes == 1 {
                .invalidCloseFrame
            } else if let code, !Self.maySend(code) {
                .invalidCloseCode
            } else if String(validating: body.readableBytesView, as: UTF8.self) == nil {
                .invalidCloseReason
            } else {
                nil
            }
        if let violation { failure = ProtocolViolation(disconnect: violation) }
        let answer = violation ?? .echo(code ?? 1000)
        state = .closing(Closing(sent: answer, answeredClient: true))
        fragments = nil
        text = nil
        return .answerClose(answer)
    }

    /// Whether an endpoint may send `code` in a close frame (RFC 6455 §7.4.1–2, and the IANA
    /// registry as Autobahn tests it).
    static func maySend(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1011, 3000...4999: true
        default: false
        }
    }

    private mutating func violated(_ disconnect: Disconnect) -> FrameAction {
        switch fail(ProtocolViolation(disconnect: disconnect)) {
        case .close(let sent), .queue(let sent): .close(sent)
        case .none: .none
        }
    }

    private mutating func fail(_ violation: ProtocolViolation) -> CloseAction {
        fail(violation, violation.disconnect)
    }

    /// The connection failed (`error`, closed with `disconnect`): on an open connection the
    /// close is queued behind what was queued before (see the type); nothing more is read.
    private mutating func fail(_ error: any Error, _ disconnect: Disconnect) -> CloseAction {
        guard case .open = state else {
            let action = close(disconnect)
            if action != .none { failure = error }
            return action
        }
        state = .closeQueued(Closing(sent: disconnect, answeredClient: false))
        fragments = nil
        text = nil
        failure = error
        return .queue(disconnect)
    }
}
