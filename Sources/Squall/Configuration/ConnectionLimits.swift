// SPDX-License-Identifier: Apache-2.0

/// How many connections the server holds, from everyone and from one address, and how much
/// kernel memory each may pin while its client does not read.
///
/// Contracts:
/// - Every TCP connection counts, HTTP and WebSocket alike, from accept to close. The one over
///   a limit is answered **503** `too_many_connections` (JSON, `Retry-After`) to its first
///   request — a WebSocket upgrade too — and closed; open connections are never touched.
/// - Connections from `127.0.0.1` and `::1` count towards ``maxConnections`` only: a reverse
///   proxy on the same machine, and tools run on it, connect from there on behalf of many
///   clients.
public struct ConnectionLimits: Sendable, Hashable {
    /// Most open connections. Default 100,000, lowered at start to what the process may open
    /// (its `RLIMIT_NOFILE` less a reserve), so that a client over it gets an answer rather than
    /// a connection the kernel refuses.
    public var maxConnections: Int
    /// Most open connections from one client IP address. Default 1,000.
    public var maxPerAddress: Int
    /// The kernel's send buffer for each connection (`SO_SNDBUF`; Linux keeps twice the value
    /// for its own bookkeeping), which bounds what a client that stops reading pins in the
    /// kernel beyond its outbox; `nil` leaves it to the kernel, which on Linux grows it up to
    /// `net.ipv4.tcp_wmem`'s maximum (4 MiB by default). Default 256 KiB.
    public var socketSendBuffer: Int?

    /// Limits with the given values; every default as documented on each property.
    public init(maxConnections: Int = 100_000, maxPerAddress: Int = 1_000, socketSendBuffer: Int? = 256 * 1024) {
        self.maxConnections = maxConnections
        self.maxPerAddress = maxPerAddress
        self.socketSendBuffer = socketSendBuffer
    }
}
