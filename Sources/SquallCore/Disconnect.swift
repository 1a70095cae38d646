/// Why the server ends a connection: a code and a human-readable reason.
///
/// Codes follow WebSocket close codes (RFC 6455 §7.4) on every transport, so a client sees the
/// same code whether it was connected over WebSocket or anything else. Reasons are short
/// ASCII sentences: a WebSocket close frame carries at most 123 bytes of reason.
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

    /// 1000: the application closed the connection on purpose.
    public static let normal = Disconnect(code: 1000, reason: "")
    /// 1001: the server is shutting down; the client may reconnect to another node or later.
    public static let shutdown = Disconnect(code: 1001, reason: "server shutting down")
    /// 1008: the client did not read fast enough and its outbox overflowed. Closing it keeps
    /// its backlog from stalling everyone else or growing memory without bound.
    public static let slowConsumer = Disconnect(code: 1008, reason: "slow consumer: outbox overflow")
    /// 1011: a handler failed while serving this connection.
    public static let serverError = Disconnect(code: 1011, reason: "internal server error")

    /// 4010: the client asked to resume from a position that is gone (another epoch, or older
    /// than retention). The reason carries the current position to start again from.
    public static func positionNotRecoverable(current: StreamPosition) -> Disconnect {
        Disconnect(code: 4010, reason: "position not recoverable; current \(current)")
    }

    /// `code reason`, as logged.
    public var description: String { reason.isEmpty ? "\(code)" : "\(code) \(reason)" }
}
