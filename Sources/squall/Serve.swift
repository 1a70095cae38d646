import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import Squall
import SquallCore
import SquallPostgres
import SquallSQLite

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
    var logLevel: LogLevel?

    @Option(help: "Event-loop threads serving connections. [default: the CPUs this process may run on, e.g. 1 under taskset -c 0] [env: SQUALL_THREADS]")
    var threads: Int?

    @Option(help: "Largest message a client may send, e.g. 65536, 512KiB, 1MiB; larger closes with 1009. [default: 1MiB] [env: SQUALL_MAX_MESSAGE_SIZE]")
    var maxMessageSize: ByteCount?

    @Option(help: "Most messages queued for one client before it is closed as too slow (1008). [default: 1024] [env: SQUALL_OUTBOX_MESSAGES]")
    var outboxMessages: Int?

    @Option(help: "Most bytes queued for one client before it is closed as too slow (1008). [default: 16MiB] [env: SQUALL_OUTBOX_BYTES]")
    var outboxBytes: ByteCount?

    @Option(
        help:
            "Smallest message sent compressed to WebSocket clients that negotiate permessage-deflate, e.g. 0, 512, 1KiB; off declines the extension. [default: 1KiB] [env: SQUALL_DEFLATE_MIN_SIZE]"
    )
    var deflateMinSize: DeflateMinimum?

    @Option(help: "Seconds between pings to each client; a client that misses one is closed. 0 turns pings off. [default: 30] [env: SQUALL_PING_INTERVAL]")
    var pingInterval: Seconds?

    @Option(
        help:
            "Seconds a closing client may take to finish the close handshake before it is dropped; also bounds shutdown. [default: 3] [env: SQUALL_CLOSE_TIMEOUT]"
    )
    var closeTimeout: Seconds?

    @Option(
        help: """
            Where channel logs are kept: memory (forgotten on restart); sqlite:PATH, a SQLite database file that history, positions \
            and epochs survive restarts in; or postgres://USER@HOST[:PORT]/DB, a PostgreSQL database that several nodes share as one \
            system. With a database a publish is acknowledged once committed. [default: memory] [env: SQUALL_STORE]
            """
    )
    var store: StoreOption?

    @Option(
        help: """
            With --store sqlite:PATH, what a commit survives: normal, a crash of the process; full, a power loss too (an fsync per \
            commit). [default: normal] [env: SQUALL_SQLITE_SYNC]
            """
    )
    var sqliteSync: SQLiteLogStore.Durability?

    @Option(help: "Messages each channel keeps for history and resume. [default: 1000] [env: SQUALL_RETENTION_MESSAGES]")
    var retentionMessages: Int?

    @Option(help: "Seconds each channel keeps a message for history and resume. [default: 3600] [env: SQUALL_RETENTION_AGE]")
    var retentionAge: Seconds?

    @Option(help: "Bytes each channel keeps for history and resume, wire-format copies included, e.g. 16MiB. [default: 16MiB] [env: SQUALL_RETENTION_BYTES]")
    var retentionBytes: ByteCount?

    @Option(
        help: """
            Seconds a database store keeps a channel's position (epoch and last offset) after its last message, before it forgets \
            the channel, rows and all; at least --retention-age. [default: 604800, 7 days] [env: SQUALL_HISTORY_META_TTL]
            """
    )
    var historyMetaTtl: Seconds?

    @Option(
        help: "Most bytes of messages or presence members in one history, poll or presence reply (at least one). [default: 1MiB] [env: SQUALL_MAX_REPLY_BYTES]")
    var maxReplyBytes: ByteCount?

    @Option(help: "Seconds a new connection may take to send its first request head. [default: 10] [env: SQUALL_HANDSHAKE_TIMEOUT]")
    var handshakeTimeout: Seconds?

    @Option(help: "Seconds an HTTP connection may sit idle between requests. [default: 60] [env: SQUALL_IDLE_TIMEOUT]")
    var idleTimeout: Seconds?

    @Option(help: "Seconds a request body may take to arrive. [default: 30] [env: SQUALL_BODY_TIMEOUT]")
    var bodyTimeout: Seconds?

    @Option(help: "Seconds an HTTP response may wait on a client that does not read. [default: 30] [env: SQUALL_WRITE_TIMEOUT]")
    var writeTimeout: Seconds?

    @Option(help: "Longest a long poll waits for a message, in seconds; keep it below proxy timeouts. [default: 25] [env: SQUALL_LONG_POLL_WAIT]")
    var longPollWait: Seconds?

    @Option(help: "Seconds between heartbeat comments on an idle Server-Sent Events stream. [default: 15] [env: SQUALL_SSE_HEARTBEAT]")
    var sseHeartbeat: Seconds?

    @Option(
        help:
            "Most open connections, HTTP and WebSocket; the next is answered 503. Lowered to what the process may open. [default: 100000] [env: SQUALL_MAX_CONNECTIONS]"
    )
    var maxConnections: Int?

    @Option(
        help:
            "Most open connections from one client IP address; 127.0.0.1 and ::1 are exempt. [default: 1000] [env: SQUALL_MAX_CONNECTIONS_PER_ADDRESS]"
    )
    var maxConnectionsPerAddress: Int?

    @Option(
        help:
            "Publishes a client may make, as N/s, N/min or N/h, per WebSocket connection or per address over HTTP; off for no limit. [default: 1000/s] [env: SQUALL_PUBLISH_RATE]"
    )
    var publishRate: RateLimitOption?

    @Option(help: "Publishes that may pass at once above the rate. [default: ten seconds' worth of --publish-rate] [env: SQUALL_PUBLISH_BURST]")
    var publishBurst: Int?

    @Option(
        help:
            "Subscribes and unsubscribes a client may make, as N/s, N/min or N/h, per /ws connection or per address for /msg and SSE; with a store, also per address for each request that opens a channel from it (127.0.0.1 and ::1 exempt); off for no limit. [default: 100/s] [env: SQUALL_SUBSCRIBE_RATE]"
    )
    var subscribeRate: RateLimitOption?

    @Option(
        help:
            "Subscribes and unsubscribes that may pass at once above the rate. [default: ten seconds' worth of --subscribe-rate] [env: SQUALL_SUBSCRIBE_BURST]")
    var subscribeBurst: Int?

    @Option(
        help:
            "Kernel send buffer per connection (SO_SNDBUF), which bounds what a client that stops reading pins beyond its outbox; off leaves it to the kernel. [default: 256KiB] [env: SQUALL_SOCKET_SEND_BUFFER]"
    )
    var socketSendBuffer: OptionalByteCount?

    @Option(
        name: .customLong("allowed-origin"),
        help: """
            A web origin, scheme://host[:port], whose pages may open WebSockets, publish and read replies besides the server's own; \
            repeat for more; * admits every origin. [default: none] [env: SQUALL_ALLOWED_ORIGINS, comma-separated]
            """
    )
    var allowedOrigins: [String] = []

    @Option(
        name: .customLong("trusted-proxy"),
        help: """
            A proxy, ADDRESS or ADDRESS/PREFIX, whose --forwarded-header says which client a request is from, for \
            limits, rates and the access log; repeat for more. From any other peer the header is ignored. [default: none] \
            [env: SQUALL_TRUSTED_PROXIES, comma-separated]
            """
    )
    var trustedProxies: [String] = []

    @Option(
        help: """
            The header trusted proxies write the client's address in: x-forwarded-for or forwarded (RFC 7239). Only that one is \
            read: a proxy passes the other on as the client sent it. [default: x-forwarded-for] [env: SQUALL_FORWARDED_HEADER]
            """
    )
    var forwardedHeader: ClientAddresses.ForwardingHeader?

    @Option(help: "Leading bits of an IPv4 address that make one client for per-address limits and rates, 1-32. [default: 32] [env: SQUALL_IPV4_PREFIX]")
    var ipv4Prefix: Int?

    @Option(
        help:
            "Leading bits of an IPv6 address that make one client for per-address limits and rates, 1-128; a /64 is one host's usual share. [default: 64] [env: SQUALL_IPV6_PREFIX]"
    )
    var ipv6Prefix: Int?

    @Option(
        name: .customLong("tls-cert"),
        help:
            "PEM file with the certificate chain to serve TLS with (wss://, https://, HTTP/2 by ALPN); needs --tls-key. [default: none] [env: SQUALL_TLS_CERT]"
    )
    var tlsCertificate: String?

    @Option(name: .customLong("tls-key"), help: "PEM file with the private key of --tls-cert. [default: none] [env: SQUALL_TLS_KEY]")
    var tlsKey: String?

    func run() async throws {
        let configuration = try await resolvedConfiguration()
        let environment = EnvironmentOptions(ProcessInfo.processInfo.environment)
        let level = try environment.resolve(logLevel, "SQUALL_LOG_LEVEL", default: LogLevel(.info)).level
        // main.swift has already sized the event-loop group from the same option (it must
        // happen before anything runs); a bad value is still a usage error here.
        let threads = try environment.resolve(threads, "SQUALL_THREADS", default: ProcessorAffinity.cpuCount)
        guard EventLoopThreads.range.contains(threads) else {
            throw ValidationError("threads must be between 1 and 1024, got \(threads)")
        }

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

    /// Every option from the command line, else the environment, else the default; checked
    /// before anything is built from it, so a bad value is a usage error, never a crash.
    private func resolvedConfiguration() async throws -> SquallConfiguration {
        let environment = EnvironmentOptions(ProcessInfo.processInfo.environment)
        let defaults = SquallConfiguration()
        let port = try environment.resolve(port, "SQUALL_PORT", default: defaults.port)
        let maxMessageSize = try environment.resolve(maxMessageSize, "SQUALL_MAX_MESSAGE_SIZE", default: ByteCount(defaults.maxMessageSize)).bytes
        let outboxMessages = try environment.resolve(outboxMessages, "SQUALL_OUTBOX_MESSAGES", default: defaults.outbox.maxMessages)
        let outboxBytes = try environment.resolve(outboxBytes, "SQUALL_OUTBOX_BYTES", default: ByteCount(defaults.outbox.maxBytes)).bytes
        let deflate = try environment.resolve(deflateMinSize, "SQUALL_DEFLATE_MIN_SIZE", default: DeflateMinimum(defaults.deflate))
        let ping = try environment.resolve(pingInterval, "SQUALL_PING_INTERVAL", default: Seconds(defaults.pingInterval ?? .zero)).duration
        let retentionMessages = try environment.resolve(retentionMessages, "SQUALL_RETENTION_MESSAGES", default: defaults.retention.maxMessages)
        let retentionAge = try environment.resolve(retentionAge, "SQUALL_RETENTION_AGE", default: Seconds(defaults.retention.maxAge)).duration
        let sseHeartbeat = try environment.resolve(sseHeartbeat, "SQUALL_SSE_HEARTBEAT", default: Seconds(defaults.sseHeartbeat)).duration
        let retentionBytes = try environment.resolve(retentionBytes, "SQUALL_RETENTION_BYTES", default: ByteCount(defaults.retention.maxBytes)).bytes
        let metaTTL = try environment.resolve(historyMetaTtl, "SQUALL_HISTORY_META_TTL", default: Seconds(defaults.retention.metaTTL)).duration
        let maxReplyBytes = try environment.resolve(maxReplyBytes, "SQUALL_MAX_REPLY_BYTES", default: ByteCount(defaults.maxReplyBytes)).bytes
        let timeouts = try [
            environment.resolve(handshakeTimeout, "SQUALL_HANDSHAKE_TIMEOUT", default: Seconds(defaults.handshakeTimeout)),
            environment.resolve(idleTimeout, "SQUALL_IDLE_TIMEOUT", default: Seconds(defaults.idleTimeout)),
            environment.resolve(bodyTimeout, "SQUALL_BODY_TIMEOUT", default: Seconds(defaults.bodyTimeout)),
            environment.resolve(writeTimeout, "SQUALL_WRITE_TIMEOUT", default: Seconds(defaults.writeTimeout)),
        ].map(\.duration)

        guard (0...65535).contains(port) else {
            throw ValidationError("port must be between 0 and 65535, got \(port)")
        }
        guard maxMessageSize >= 1, outboxMessages >= 1, outboxBytes >= 1, retentionMessages >= 1, retentionBytes >= 1, maxReplyBytes >= 1 else {
            throw ValidationError("sizes, outbox, retention and reply limits must be at least 1")
        }
        guard retentionAge > .zero, sseHeartbeat > .zero, timeouts.allSatisfy({ $0 > .zero }) else {
            throw ValidationError("retention age, SSE heartbeat and timeouts must be more than 0 seconds")
        }
        guard metaTTL >= retentionAge else {
            throw ValidationError("history meta TTL (\(metaTTL)) must be at least the retention age (\(retentionAge)): a position outlives its messages")
        }
        let limits = try resolvedLimits(environment, defaults: defaults.limits)
        let clientAddresses = try resolvedClientAddresses(environment, defaults: defaults.clientAddresses)
        let publishRate = try resolvedRate(
            environment, publishRate, "SQUALL_PUBLISH_RATE", burst: publishBurst, "SQUALL_PUBLISH_BURST", default: defaults.publishRate)
        let subscribeRate = try resolvedRate(
            environment, subscribeRate, "SQUALL_SUBSCRIBE_RATE", burst: subscribeBurst, "SQUALL_SUBSCRIBE_BURST", default: defaults.subscribeRate)
        let origins: OriginPolicy
        do {
            origins = try OriginPolicy(allowing: environment.resolve(allowedOrigins, "SQUALL_ALLOWED_ORIGINS"))
        } catch {
            throw ValidationError("allowed origin: \(error)")
        }
        let tls = try resolvedTLS(environment)
        let retention = Retention(maxMessages: retentionMessages, maxAge: retentionAge, maxBytes: retentionBytes, metaTTL: metaTTL)
        let storage = try await resolvedStorage(environment, retention: retention)
        return SquallConfiguration(
            host: try environment.resolve(host, "SQUALL_HOST", default: defaults.host),
            port: port,
            maxMessageSize: maxMessageSize,
            outbox: Outbox.Limits(maxMessages: outboxMessages, maxBytes: outboxBytes),
            deflate: deflate.options,
            pingInterval: ping == .zero ? nil : ping,
            closeTimeout: try environment.resolve(closeTimeout, "SQUALL_CLOSE_TIMEOUT", default: Seconds(defaults.closeTimeout)).duration,
            retention: retention,
            storage: storage,
            longPollWait: try environment.resolve(longPollWait, "SQUALL_LONG_POLL_WAIT", default: Seconds(defaults.longPollWait)).duration,
            sseHeartbeat: sseHeartbeat,
            maxReplyBytes: maxReplyBytes,
            handshakeTimeout: timeouts[0],
            idleTimeout: timeouts[1],
            bodyTimeout: timeouts[2],
            writeTimeout: timeouts[3],
            origins: origins,
            limits: limits,
            clientAddresses: clientAddresses,
            publishRate: publishRate,
            subscribeRate: subscribeRate,
            tls: tls
        )
    }

    /// The store `--store` names, opened: a SQLite file is created if missing; a PostgreSQL
    /// database must be reachable, and gets Squall's tables if it lacks them.
    private func resolvedStorage(_ environment: EnvironmentOptions, retention: Retention) async throws -> LogStorage {
        let durability = try environment.resolve(sqliteSync, "SQUALL_SQLITE_SYNC", default: .processCrash)
        let choice = try environment.resolve(store, "SQUALL_STORE", default: StoreOption.memory)
        do throws(StoreError) {
            switch choice {
            case .memory:
                return .memory
            case .sqlite(let path):
                return .local(try SQLiteLogStore(path: path, durability: durability, retention: retention))
            case .postgres(let url):
                return .shared(try await PostgresLogStore(address: PostgresAddress(url), retention: retention))
            }
        } catch {
            throw ValidationError(error.description)
        }
    }

    private func resolvedTLS(_ environment: EnvironmentOptions) throws -> TLSFiles? {
        let certificate = try environment.resolve(tlsCertificate, "SQUALL_TLS_CERT")
        let key = try environment.resolve(tlsKey, "SQUALL_TLS_KEY")
        switch (certificate, key) {
        case (nil, nil): return nil
        case (let certificate?, let key?): return TLSFiles(certificateChain: certificate, privateKey: key)
        default: throw ValidationError("--tls-cert and --tls-key go together")
        }
    }

    private func resolvedClientAddresses(_ environment: EnvironmentOptions, defaults: ClientAddresses) throws -> ClientAddresses {
        let proxies: [AddressRange]
        do {
            proxies = try environment.resolve(trustedProxies, "SQUALL_TRUSTED_PROXIES").map { text throws(AddressRange.InvalidAddressRange) in
                try AddressRange(parsing: text)
            }
        } catch {
            throw ValidationError("trusted proxy: \(error)")
        }
        let ipv4 = try environment.resolve(ipv4Prefix, "SQUALL_IPV4_PREFIX", default: defaults.ipv4Prefix)
        let ipv6 = try environment.resolve(ipv6Prefix, "SQUALL_IPV6_PREFIX", default: defaults.ipv6Prefix)
        guard (1...32).contains(ipv4), (1...128).contains(ipv6) else {
            throw ValidationError("the IPv4 prefix must be 1-32 and the IPv6 prefix 1-128, got \(ipv4) and \(ipv6)")
        }
        let header = try environment.resolve(forwardedHeader, "SQUALL_FORWARDED_HEADER", default: defaults.forwardingHeader)
        return ClientAddresses(trustedProxies: proxies, forwardingHeader: header, ipv4Prefix: ipv4, ipv6Prefix: ipv6)
    }

    private func resolvedLimits(_ environment: EnvironmentOptions, defaults: ConnectionLimits) throws -> ConnectionLimits {
        let total = try environment.resolve(maxConnections, "SQUALL_MAX_CONNECTIONS", default: defaults.maxConnections)
        let perAddress = try environment.resolve(maxConnectionsPerAddress, "SQUALL_MAX_CONNECTIONS_PER_ADDRESS", default: defaults.maxPerAddress)
        let sendBuffer = try environment.resolve(socketSendBuffer, "SQUALL_SOCKET_SEND_BUFFER", default: OptionalByteCount(defaults.socketSendBuffer)).bytes
        guard total >= 1, perAddress >= 1 else {
            throw ValidationError("connection limits must be at least 1")
        }
        // Linux takes no less than 4,608 bytes and no more than net.core.wmem_max; the kernel
        // clamps, so only nonsense is refused here.
        guard sendBuffer.map({ (1...(1 << 30)).contains($0) }) ?? true else {
            throw ValidationError("socket send buffer must be between 1 byte and 1GiB, or off")
        }
        return ConnectionLimits(maxConnections: total, maxPerAddress: perAddress, socketSendBuffer: sendBuffer)
    }

    /// A rate and its burst, each from the command line, else the environment, else the default.
    private func resolvedRate(
        _ environment: EnvironmentOptions,
        _ option: RateLimitOption?,
        _ variable: String,
        burst burstOption: Int?,
        _ burstVariable: String,
        default defaultRate: RateLimit?
    ) throws -> RateLimit? {
        let rate = try environment.resolve(option, variable, default: RateLimitOption(defaultRate)).rate
        let burst = try environment.resolve(burstOption, burstVariable)
        guard burst.map({ $0 >= 1 }) ?? true else { throw ValidationError("\(burstVariable.lowercased()): a burst must be at least 1") }
        guard let rate else { return nil }
        return burst.map { RateLimit(perSecond: rate.perSecond, burst: $0) } ?? rate
    }
}
