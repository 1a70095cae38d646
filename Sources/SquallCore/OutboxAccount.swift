// SPDX-License-Identifier: Apache-2.0

/// The account of what waits to be written to one WebSocket: messages handed to its socket's
/// write queue that the kernel has not taken yet. (``Outbox`` is the queue itself, for
/// transports that write from a task; a WebSocket's queue is its socket's, so it only counts.)
///
/// A transport asks the account to ``admit(bytes:)`` each message before queuing it, and tells
/// it with ``settle(unsentBytes:)`` how much the socket's queue still holds after each flush
/// (a number the socket layer knows without a callback per write). Contracts:
/// - **Bounded.** A message that would take the account past `Limits.maxMessages` or
///   `Limits.maxBytes` is refused; the transport then closes the client with
///   `Disconnect.slowConsumer`. One slow client costs at most its limits in memory and never
///   delays anyone else.
/// - **One message always fits.** An empty account admits any message, so the byte limit never
///   refuses a single message that the message-size limit allowed.
/// - **Counted since the client last caught up.** Bytes are exactly what the queue holds;
///   messages are those admitted since the queue was last seen empty — an upper bound, so the
///   limit errs on the side of protecting the server.
/// - The account keeps no payloads: the socket's queue holds them (shared, not copied).
///
/// Not thread-safe: one connection's account lives on that connection's event loop.
public struct OutboxAccount: Sendable {
    /// The bounds this account enforces.
    public let limits: Outbox.Limits
    /// Messages admitted and not yet sent.
    public private(set) var messages = 0
    /// Bytes admitted and not yet sent.
    public private(set) var bytes = 0

    /// An empty account.
    public init(limits: Outbox.Limits = Outbox.Limits()) {
        self.limits = limits
    }

    /// Counts one more message of `bytes` bytes as waiting.
    /// - Returns: `false`, counting nothing, if it would pass a limit (the client is too slow).
    public mutating func admit(bytes size: Int) -> Bool {
        if messages > 0, messages + 1 > limits.maxMessages || bytes + size > limits.maxBytes {
            return false
        }
        messages += 1
        bytes += size
        return true
    }

    /// The socket's queue holds `unsentBytes` after a flush: none means the client has read
    /// everything and the account empties.
    public mutating func settle(unsentBytes: Int) {
        if unsentBytes == 0 {
            messages = 0
        }
        bytes = unsentBytes
    }
}
