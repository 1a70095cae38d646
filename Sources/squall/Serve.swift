import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import Squall
import SquallCore

/// `squall serve`: runs the server until SIGINT or SIGTERM, then shuts down gracefully
/// (WebSockets get 1001) and exits 0.
///
/// Every option can also come from an environment variable (`--port` from `SQUALL_PORT`, …);
/// a command-line option wins over the environment, which wins over the default.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the chat at ws://HOST:PORT/msg and the demo page at http://HOST:PORT/."
    )

    @Option(help: "Address to bind. [default: 127.0.0.1] [env: SQUALL_HOST]")
    var host: String?

    @Option(help: "Port to bind; 0 picks a free one. [default: 8000] [env: SQUALL_PORT]")
    var port: Int?

    @Option(help: "Least severe level logged. [default: info] [env: SQUALL_LOG_LEVEL]")
    var logLevel: Logger.Level?

    @Option(help: "Largest message a client may send, e.g. 65536, 512KiB, 1MiB; larger closes with 1009. [default: 1MiB] [env: SQUALL_MAX_MESSAGE_SIZE]")
    var maxMessageSize: ByteCount?

    @Option(help: "Most messages queued for one client before it is closed as too slow (1008). [default: 1024] [env: SQUALL_OUTBOX_MESSAGES]")
    var outboxMessages: Int?

    @Option(help: "Most bytes queued for one client before it is closed as too slow (1008). [default: 16MiB] [env: SQUALL_OUTBOX_BYTES]")
    var outboxBytes: ByteCount?

    @Option(help: "Seconds between pings to each client; a client that misses one is closed. 0 turns pings off. [default: 30] [env: SQUALL_PING_INTERVAL]")
    var pingInterval: Seconds?

    @Option(help: "Seconds a closing client may take to finish the close handshake before it is dropped; also bounds shutdown. [default: 3] [env: SQUALL_CLOSE_TIMEOUT]")
    var closeTimeout: Seconds?

    func run() async throws {
        let environment = EnvironmentOptions(ProcessInfo.processInfo.environment)
        let defaults = SquallConfiguration()
        let level = try environment.resolve(logLevel, "SQUALL_LOG_LEVEL", default: .info)
        let ping = try environment.resolve(pingInterval, "SQUALL_PING_INTERVAL", default: Seconds(defaults.pingInterval ?? .zero))
        let configuration = SquallConfiguration(
            host: try environment.resolve(host, "SQUALL_HOST", default: defaults.host),
            port: try environment.resolve(port, "SQUALL_PORT", default: defaults.port),
            maxMessageSize: try environment.resolve(maxMessageSize, "SQUALL_MAX_MESSAGE_SIZE", default: ByteCount(defaults.maxMessageSize)).bytes,
            outbox: Outbox.Limits(
                maxMessages: try environment.resolve(outboxMessages, "SQUALL_OUTBOX_MESSAGES", default: defaults.outbox.maxMessages),
                maxBytes: try environment.resolve(outboxBytes, "SQUALL_OUTBOX_BYTES", default: ByteCount(defaults.outbox.maxBytes)).bytes
            ),
            pingInterval: ping.duration == .zero ? nil : ping.duration,
            closeTimeout: try environment.resolve(closeTimeout, "SQUALL_CLOSE_TIMEOUT", default: Seconds(defaults.closeTimeout)).duration
        )
        try Self.validate(configuration)

        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "squall")
        let server = SquallServer(configuration: configuration, logger: logger)
        let group = ServiceGroup(
            configuration: .init(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
    }

    private static func validate(_ configuration: SquallConfiguration) throws {
        guard (0...65535).contains(configuration.port) else {
            throw ValidationError("port must be between 0 and 65535, got \(configuration.port)")
        }
        guard configuration.maxMessageSize >= 1 else {
            throw ValidationError("max message size must be at least 1 byte")
        }
        guard configuration.outbox.maxMessages >= 1, configuration.outbox.maxBytes >= 1 else {
            throw ValidationError("outbox limits must be at least 1")
        }
    }
}
