// SPDX-License-Identifier: Apache-2.0

import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The handshake load generator: `concurrency` WebSocket handshakes in flight on plain
/// non-blocking sockets and `poll(2)`, each closed (close frame, then the socket) as soon as its
/// 101 arrives, until `count` have completed.
///
/// Why not NIO channels, as the other generators use: creating, registering and tearing down a
/// client channel per handshake cost the generator more CPU per handshake than the servers it
/// measures spend answering one, so every server measured the generator's rate.
/// Here the generator's own cost is the kernel's part of a connection and little else.
///
/// Runs on the calling thread and blocks it: ``Benchmarks/handshakes(_:count:concurrency:serverPID:)``
/// gives it a thread of its own. Bounded by `count` and by `deadline`.
struct HandshakeFlood {
    let target: BenchTarget
    let count: Int
    let concurrency: Int
    let deadline: ContinuousClock.Instant

    private struct Connection {
        let socket: Int32
        var opened = false
        var response: [UInt8] = []
    }

    /// Runs every handshake; throws on the first that fails (refused, dropped, not a 101) or at
    /// the deadline.
    func run() throws {
        var connections: [Connection] = []
        var polled: [pollfd] = []
        defer { for connection in connections { close(connection.socket) } }
        var started = 0
        var completed = 0
        func start() throws {
            let socket = try connect()
            started += 1
            connections.append(Connection(socket: socket))
            polled.append(pollfd(fd: socket, events: Int16(POLLOUT), revents: 0))
        }
        for _ in 0..<min(concurrency, count) { try start() }

        var buffer = [UInt8](repeating: 0, count: 4096)
        while completed < count {
            guard ContinuousClock.now < deadline else { throw BenchError.timedOut }
            let ready = poll(&polled, nfds_t(polled.count), 100)
            guard ready >= 0 else {
                if errno == EINTR { continue }
                throw BenchError.handshakeFailed
            }
            var index = 0
            while index < polled.count {
                guard polled[index].revents != 0 else {
                    index += 1
                    continue
                }
                polled[index].revents = 0
                if !connections[index].opened {
                    try sendRequest(on: connections[index].socket)
                    connections[index].opened = true
                    polled[index].events = Int16(POLLIN)
                    index += 1
                    continue
                }
                let socket = connections[index].socket
                let received = read(socket, &buffer, buffer.count)
                if received < 0, errno == EAGAIN || errno == EINTR {
                    index += 1
                    continue
                }
                guard received > 0 else { throw BenchError.handshakeFailed }
                connections[index].response += buffer[0..<received]
                guard let headLength = BenchSocket.headLength(in: connections[index].response) else {
                    index += 1
                    continue
                }
                try check(connections[index].response.prefix(headLength))
                sendClose(on: socket)
                close(socket)
                completed += 1
                connections.remove(at: index)
                polled.remove(at: index)
                if started < count { try start() }
            }
        }
    }

    /// A non-blocking socket connecting to the target (the connection completes in the
    /// background; `poll` says when it is writable).
    private func connect() throws -> Int32 {
        let family = target.address.protocol.rawValue
        #if canImport(Glibc)
            let socket = Glibc.socket(family, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let socket = Darwin.socket(family, SOCK_STREAM, 0)
        #endif
        guard socket >= 0 else { throw BenchError.handshakeFailed }
        var on: Int32 = 1
        setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        _ = fcntl(socket, F_SETFL, fcntl(socket, F_GETFL) | O_NONBLOCK)
        let result = target.address.withSockAddr { address, length in
            Self.connect(socket, address, socklen_t(length))
        }
        guard result == 0 || errno == EINPROGRESS else {
            close(socket)
            throw BenchError.handshakeFailed
        }
        return socket
    }

    private static func connect(_ socket: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int32 {
        #if canImport(Glibc)
            Glibc.connect(socket, address, length)
        #else
            Darwin.connect(socket, address, length)
        #endif
    }

    /// Writes the upgrade request once the connection is up (it fits any socket's buffer).
    private func sendRequest(on socket: Int32) throws {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(socket, SOL_SOCKET, SO_ERROR, &error, &length) == 0, error == 0 else { throw BenchError.handshakeFailed }
        let request = target.upgradeRequestHead + BenchSocket.randomKey() + target.upgradeRequestTail
        guard write(socket, request, request.count) == request.count else { throw BenchError.handshakeFailed }
    }

    /// A 101, and with deflate offered, one that accepted it.
    private func check(_ head: ArraySlice<UInt8>) throws {
        guard head.starts(with: "HTTP/1.1 101".utf8) else { throw BenchError.handshakeFailed }
        if target.offersDeflate {
            let accepted = head.withUnsafeBytes { BenchSocket.contains($0[...], "permessage-deflate") }
            guard accepted else { throw BenchError.handshakeFailed }
        }
    }

    /// A masked close frame with 1000 (normal closure), as a client sends it.
    private func sendClose(on socket: Int32) {
        var random = SystemRandomNumberGenerator()
        let mask = withUnsafeBytes(of: random.next() as UInt32) { Array($0) }
        let frame: [UInt8] = [0x88, 0x82] + mask + [0x03 ^ mask[0], 0xE8 ^ mask[1]]
        _ = write(socket, frame, frame.count)
    }
}
