// SPDX-License-Identifier: Apache-2.0

import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The listening socket: accepts each connection and sets it up on its event loop with
/// ``ConnectionSetup``. A connection that becomes a WebSocket never leaves its event loop; only
/// one that stays HTTP gets a task, running Hummingbird's HTTP/1.1 handling with the router.
///
/// Why not Hummingbird's `Server`: it passes every accepted connection through an async
/// sequence to a new task and tracks it for quiescing, which was about a fifth of a WebSocket
/// handshake's CPU, for connections that need neither once upgraded.
///
/// Graceful shutdown: the listening socket closes, HTTP connections are told to quiesce
/// (Hummingbird closes each once its response in flight is written), and `run()` returns when
/// the last of them has closed. Upgraded connections are ``ConnectionDrain``'s to close, which
/// runs first.
struct Listener: Service {
    let host: String
    let port: Int
    let upgrade: ConnectionSetup
    let logger: Logger
    let onListening: @Sendable (SocketAddress) async -> Void

    func run() async throws {
        let (connections, waiting) = AsyncStream.makeStream(of: ConnectionSetup.Value.self)
        let open = HTTPConnections()
        let upgrade = self.upgrade
        let logger = self.logger
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let value = try upgrade.configure(channel)
                    value.result.assumeIsolated().whenComplete { result in
                        if case .success(.webSocket) = result { return }
                        // Refused, dropped or gone before a request: nothing for a task to do. A
                        // refusal that was answered closes itself, once the client has read it.
                        if case .failure(let error) = result, value.accepted.value == nil {
                            if !(error is RefusalAnswered) { channel.close(promise: nil) }
                            return
                        }
                        switch result {
                        case .success(.http), .success(.http2): open.insert(channel)
                        default: break
                        }
                        if case .terminated = waiting.yield(value) { channel.close(promise: nil) }
                    }
                }
            }
            .bind(host: host, port: port)
            .get()
        // Whether shut down or cancelled, once the listening socket is closed no connection comes.
        server.closeFuture.whenComplete { _ in
            waiting.finish()
            open.quiesce()
        }
        if let address = server.localAddress {
            let secure = upgrade.tls != nil ? "s" : ""
            logger.notice("Squall serving http\(secure)://\(address.urlAuthority)/ — chat at ws\(secure)://\(address.urlAuthority)/msg")
            await onListening(address)
        }
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                // Returns once the stream has finished and every HTTP connection has closed.
                await withDiscardingTaskGroup { group in
                    for await value in connections {
                        group.addTask { await upgrade.handle(value: value, logger: logger) }
                    }
                }
            } onCancel: {
                server.close(promise: nil)
            }
        } onGracefulShutdown: {
            server.close(promise: nil)
        }
    }
}

/// The connections that stayed HTTP, to be told to quiesce on shutdown; one that arrives after
/// is told at once.
private final class HTTPConnections: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var quiescing = false
    }

    private let state = NIOLockedValueBox(State())

    func insert(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let quiescing = state.withLockedValue { state in
            if !state.quiescing { state.channels[id] = channel }
            return state.quiescing
        }
        if quiescing { return Self.quiesce(channel) }
        channel.closeFuture.whenComplete { _ in
            _ = self.state.withLockedValue { $0.channels.removeValue(forKey: id) }
        }
    }

    func quiesce() {
        let channels = state.withLockedValue { state in
            state.quiescing = true
            return Array(state.channels.values)
        }
        channels.forEach(Self.quiesce)
    }

    private static func quiesce(_ channel: any Channel) {
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }
}
