// SPDX-License-Identifier: Apache-2.0

import Logging
import Squall
import SquallCore

/// Every option of `squall serve`, declared once: its key (the flag is `--KEY`), environment
/// variable, configuration file key, default, parser, one line of help, and whether a reload
/// changes it live. The help text, the README's and docs/configuration.md's tables and
/// `squall config defaults` are generated from ``all`` (`scripts/generate-options`; a test
/// fails when they drift). Adding an option is one entry here, one in ``all``, and its use in
/// ``Settings``.
public enum Options {
    private static func spec(
        _ key: String, env: String? = "", file: String? = "", _ defaultText: String, _ valueName: String, live: Bool = false,
        arity: OptionSpec.Arity = .one, _ summary: String
    ) -> OptionSpec {
        let environment = env == "" ? "SQUALL_" + key.uppercased().replacingOccurrences(of: "-", with: "_") : env
        return OptionSpec(
            key: key, environment: environment, fileKey: file == "" ? key : file, defaultText: defaultText, valueName: valueName, summary: summary,
            live: live, arity: arity)
    }

    // MARK: The configuration itself

    public static let config = ServeOption<String?>.optionalText(
        spec("config", file: nil, "none", "FILE", "a YAML or JSON configuration file; flags and SQUALL_* variables win over it"))
    public static let configWatch = ServeOption<Bool>.flag(
        spec("config-watch", "false", "", arity: .none, "reload when the configuration file changes, as on SIGHUP"), default: false)

    // MARK: Listening and logging

    public static let host = ServeOption<String>.text(spec("host", "127.0.0.1", "ADDRESS", "address to bind"), default: "127.0.0.1")
    public static let port = ServeOption<Int>.integer(spec("port", "8000", "N", "port to bind; 0 picks a free one"), default: 8000, in: 0...65535)
    public static let logLevel = ServeOption<Logger.Level>.choice(
        spec("log-level", "info", "LEVEL", "least severe level logged: trace, debug, info, notice, warning, error, critical"), default: .info)
    public static let threads = ServeOption<Int?>.optionalInteger(
        spec("threads", "the CPUs it may run on", "N", "event-loop threads serving connections (taskset -c 0 gives 1)"), in: 1...1024)

    // MARK: Messages and clients

    public static let maxMessageSize = ServeOption<Int>.size(
        spec("max-message-size", "1MiB", "SIZE", "largest message a client may send; larger closes with 1009"), default: 1 << 20)
    public static let outboxMessages = ServeOption<Int>.integer(
        spec("outbox-messages", "1024", "N", "most messages queued for one client before it is closed as too slow (1008)"), default: 1024,
        in: 1...100_000_000)
    public static let outboxBytes = ServeOption<Int>.size(
        spec("outbox-bytes", "16MiB", "SIZE", "most bytes queued for one client before it is closed as too slow (1008)"), default: 16 << 20)
    public static let deflateMinSize = ServeOption<Int?>.sizeOrOff(
        spec(
            "deflate-min-size", "1KiB", "SIZE",
            "smallest message sent compressed to clients that negotiate permessage-deflate; off declines the extension"),
        default: 1024, in: 0...(1 << 30))
    public static let pingInterval = ServeOption<Duration>.duration(
        spec("ping-interval", "30s", "DURATION", "time between pings; a client that misses one is closed; 0 turns pings off"), default: .seconds(30),
        allowsZero: true)
    public static let closeTimeout = ServeOption<Duration>.duration(
        spec("close-timeout", "3s", "DURATION", "time a closing client may take before it is dropped; also bounds shutdown"), default: .seconds(3))

    // MARK: Stores and retention

    public static let store = ServeOption<StoreOption>.one(
        spec(
            "store", "memory", "STORE",
            "memory; sqlite:PATH keeps history, positions and epochs in a SQLite file; postgres://USER@HOST[:PORT]/DB runs several nodes as one"),
        default: .memory, "memory, sqlite:PATH or postgres://USER@HOST[:PORT]/DB"
    ) { StoreOption(text: $0) }
    public static let sqliteSync = ServeOption<SQLiteSync>.choice(
        spec("sqlite-sync", "normal", "MODE", "with sqlite:PATH, what a commit survives: normal, a crash of the process; full, a power loss too"),
        default: .normal)
    public static let retentionMessages = ServeOption<Int>.integer(
        spec("retention-messages", "1000", "N", "messages each channel keeps for history and resume"), default: 1000, in: 1...100_000_000)
    public static let retentionAge = ServeOption<Duration>.duration(
        spec("retention-age", "1h", "DURATION", "time each channel keeps a message"), default: .seconds(3600))
    public static let retentionBytes = ServeOption<Int>.size(
        spec("retention-bytes", "16MiB", "SIZE", "bytes each channel keeps, every wire-format copy counted"), default: 16 << 20)
    public static let historyMetaTTL = ServeOption<Duration>.duration(
        spec(
            "history-meta-ttl", "7d", "DURATION",
            "time a database store keeps a channel's position after its last message; at least retention-age"),
        default: .seconds(7 * 86400))
    public static let maxReplyBytes = ServeOption<Int>.size(
        spec("max-reply-bytes", "1MiB", "SIZE", "most bytes of messages or presence members in one history, poll or presence reply"), default: 1 << 20)

    // MARK: Timeouts

    public static let handshakeTimeout = ServeOption<Duration>.duration(
        spec("handshake-timeout", "10s", "DURATION", "time a new connection may take to send its first request head"), default: .seconds(10))
    public static let idleTimeout = ServeOption<Duration>.duration(
        spec("idle-timeout", "60s", "DURATION", "time an HTTP connection may sit idle between requests"), default: .seconds(60))
    public static let bodyTimeout = ServeOption<Duration>.duration(
        spec("body-timeout", "30s", "DURATION", "time a request body may take to arrive"), default: .seconds(30))
    public static let writeTimeout = ServeOption<Duration>.duration(
        spec("write-timeout", "30s", "DURATION", "time an HTTP response may wait on a client that does not read"), default: .seconds(30))
    public static let longPollWait = ServeOption<Duration>.duration(
        spec("long-poll-wait", "25s", "DURATION", "longest a long poll waits; keep it below proxy timeouts"), default: .seconds(25))
    public static let sseHeartbeat = ServeOption<Duration>.duration(
        spec("sse-heartbeat", "15s", "DURATION", "time between heartbeats on an idle SSE stream"), default: .seconds(15))

    // MARK: Limits and rates

    public static let maxConnections = ServeOption<Int>.integer(
        spec("max-connections", "100000", "N", live: true, "most open connections; the next gets 503 too_many_connections"), default: 100_000,
        in: 1...100_000_000)
    public static let maxConnectionsPerAddress = ServeOption<Int>.integer(
        spec(
            "max-connections-per-address", "1000", "N", live: true,
            "most open connections from one client address (an IPv6 /64; 127.0.0.1 and ::1 exempt)"),
        default: 1000, in: 1...100_000_000)
    public static let publishRate = ServeOption<RateLimit?>.rate(
        spec(
            "publish-rate", "1000/s", "RATE", live: true,
            "publishes per WebSocket connection or per HTTP client address, N/s, N/min or N/h; off for none"),
        default: .standard)
    public static let publishBurst = ServeOption<Int?>.optionalInteger(
        spec("publish-burst", "10 s of the rate", "N", live: true, "publishes that may pass at once above the rate"), in: 1...1_000_000_000)
    public static let subscribeRate = ServeOption<RateLimit?>.rate(
        spec(
            "subscribe-rate", "100/s", "RATE", live: true,
            "subscribes and unsubscribes per /ws connection, or per address for /msg, SSE and requests that open a channel from a store; off for none"),
        default: .standardSubscriptions)
    public static let subscribeBurst = ServeOption<Int?>.optionalInteger(
        spec("subscribe-burst", "10 s of the rate", "N", live: true, "subscribes and unsubscribes that may pass at once above the rate"),
        in: 1...1_000_000_000)
    public static let socketSendBuffer = ServeOption<Int?>.sizeOrOff(
        spec("socket-send-buffer", "256KiB", "SIZE", "kernel send buffer per connection; off lets the kernel grow it"), default: 256 * 1024,
        in: 1...(1 << 30))

    // MARK: Origins, proxies, addresses

    public static let allowedOrigin = ServeOption<[String]>.list(
        spec(
            "allowed-origin", env: "SQUALL_ALLOWED_ORIGINS", "none", "ORIGIN", live: true, arity: .list,
            "a web origin (https://app.example) whose pages may connect and publish besides the server's own; * admits all"))
    public static let trustedProxy = ServeOption<[String]>.list(
        spec(
            "trusted-proxy", env: "SQUALL_TRUSTED_PROXIES", "none", "ADDRESS[/PREFIX]", arity: .list,
            "a proxy whose forwarding header names the client, for limits, rates and the access log"))
    public static let forwardedHeader = ServeOption<ClientAddresses.ForwardingHeader>.choice(
        spec(
            "forwarded-header", "x-forwarded-for", "HEADER",
            "the header trusted proxies write the client in: x-forwarded-for or forwarded (RFC 7239); the other is never read"),
        default: .xForwardedFor)
    public static let ipv4Prefix = ServeOption<Int>.integer(
        spec("ipv4-prefix", "32", "BITS", "leading bits of an IPv4 address that make one client, for per-address limits and rates"), default: 32,
        in: 1...32)
    public static let ipv6Prefix = ServeOption<Int>.integer(
        spec("ipv6-prefix", "64", "BITS", "leading bits of an IPv6 address that make one client, for per-address limits and rates"), default: 64,
        in: 1...128)

    // MARK: TLS

    public static let tlsCert = ServeOption<String?>.optionalText(
        spec("tls-cert", "none", "FILE", "PEM certificate chain to serve TLS with (wss://, https://, HTTP/2 by ALPN); needs tls-key"))
    public static let tlsKey = ServeOption<String?>.optionalText(spec("tls-key", "none", "FILE", "PEM private key of tls-cert"))

    // MARK: Tokens (the file's `auth:` section)

    public static let auth = ServeOption<AuthConfiguration.Mode>.choice(
        spec(
            "auth", file: "auth.mode", "optional", "MODE", live: true,
            "required: every client needs a valid connection token (401 without); optional: anonymous clients too, namespaces decide"),
        default: .optional)
    public static let jwtSecret = ServeOption<String?>.optionalText(
        spec("jwt-secret", file: "auth.jwt-secret", "none", "SECRET", live: true, "a secret of at least 32 bytes verifying HS256/384/512 tokens"))
    public static let jwtSecretFile = ServeOption<[String]>.list(
        spec(
            "jwt-secret-file", file: "auth.jwt-secret-file", "none", "FILE", live: true, arity: .list,
            "a file holding a token secret; repeat for rotation"))
    public static let jwtPublicKey = ServeOption<[String]>.list(
        spec(
            "jwt-public-key", file: "auth.jwt-public-key", "none", "[KID=]FILE", live: true, arity: .list,
            "a PEM public key verifying RS256/384/512 (RSA), ES256 (P-256) or EdDSA (Ed25519) tokens, by kid if given; repeat for rotation"))
    public static let jwks = ServeOption<[String]>.list(
        spec(
            "jwks", file: "auth.jwks", "none", "FILE|URL", live: true, arity: .list,
            "a JWKS document, a file or an http(s) URL fetched and cached; keys by kid"))
    public static let jwksRefresh = ServeOption<Duration>.duration(
        spec(
            "jwks-refresh", file: "auth.jwks-refresh", "1h", "DURATION", live: true,
            "time between fetches of JWKS URLs; a token with an unknown kid fetches sooner"),
        default: .seconds(3600))
    public static let jwtAudience = ServeOption<String?>.optionalText(
        spec("jwt-audience", file: "auth.jwt-audience", "none", "AUD", live: true, "when set, a token's aud must include it"))
    public static let jwtIssuer = ServeOption<String?>.optionalText(
        spec("jwt-issuer", file: "auth.jwt-issuer", "none", "ISS", live: true, "when set, a token's iss must be it"))
    public static let jwtLeeway = ServeOption<Duration>.duration(
        spec("jwt-leeway", file: "auth.jwt-leeway", "5s", "DURATION", live: true, "clock skew allowed on exp and nbf"), default: .seconds(5),
        allowsZero: true)

    // MARK: Server API

    public static let apiKey = ServeOption<[String]>.list(
        spec(
            "api-key", env: "SQUALL_API_KEYS", "none", "KEY", live: true, arity: .list,
            "a key that opens the server API (/api/…, Authorization: apikey KEY); repeat for rotation; none: the API is off"))

    // MARK: Backend hooks

    public static let hookConnect = ServeOption<String?>.optionalText(
        spec("hook-connect", "none", "URL", "asked before a WebSocket or SSE client is let in; may name its user (docs/operations.md)"))
    public static let hookRefresh = ServeOption<String?>.optionalText(
        spec("hook-refresh", "none", "URL", "asked when a connection's time is up, instead of closing it with 4002"))
    public static let hookSubscribe = ServeOption<String?>.optionalText(
        spec("hook-subscribe", "none", "URL", "asked before each subscribe (a namespace's hook-subscribe replaces it)"))
    public static let hookPublish = ServeOption<String?>.optionalText(
        spec("hook-publish", "none", "URL", "asked before each client publish; may replace the data (a namespace's hook-publish replaces it)"))
    public static let hookTimeout = ServeOption<Duration>.duration(
        spec("hook-timeout", "3s", "DURATION", "how long a hook may take; later counts as unavailable (hook_unavailable)"), default: .seconds(3))
    public static let hookConcurrency = ServeOption<Int>.integer(
        spec("hook-concurrency", "1000", "N", "most calls of one hook waiting at once; more are refused (hook_unavailable)"), default: 1000,
        in: 1...1_000_000)
    public static let hookHeader = ServeOption<[String]>.list(
        spec(
            "hook-header", env: "SQUALL_HOOK_HEADERS", "none", "NAME", arity: .list,
            "a request header the hooks are shown (cookie, authorization, x-request-id); repeatable"))

    // MARK: Lifecycle webhooks

    public static let webhook = ServeOption<[String]>.list(
        spec(
            "webhook", env: "SQUALL_WEBHOOKS", "none", "URL", arity: .list,
            "a URL that lifecycle events are POSTed to, signed (Standard Webhooks); repeatable; needs webhook-secret"))
    public static let webhookSecret = ServeOption<String?>.optionalText(
        spec("webhook-secret", "none", "whsec_BASE64", "the key webhooks are signed with: whsec_ and at least 16 bytes in base64"))
    public static let webhookEvents = ServeOption<[String]>.list(
        spec(
            "webhook-events", env: "SQUALL_WEBHOOK_EVENTS", "all", "TYPE", arity: .list,
            "an event type sent: connected, disconnected, subscribed, unsubscribed, published, presence_expired; repeatable"))
    public static let webhookNamespaces = ServeOption<[String]>.list(
        spec(
            "webhook-namespaces", env: "SQUALL_WEBHOOK_NAMESPACES", "all", "NAMESPACE", arity: .list,
            "a namespace whose channels' events are sent (default for the default one); repeatable"))
    public static let webhookTimeout = ServeOption<Duration>.duration(
        spec("webhook-timeout", "10s", "DURATION", "how long one delivery may take"), default: .seconds(10))
    public static let webhookRetryFor = ServeOption<Duration>.duration(
        spec("webhook-retry-for", "24h", "DURATION", "how long an event is retried before it becomes a dead letter"), default: .seconds(86_400))
    public static let webhookBackoffMax = ServeOption<Duration>.duration(
        spec("webhook-backoff-max", "5m", "DURATION", "longest wait between a webhook's tries (1 s, 2 s, 4 s, … up to it)"), default: .seconds(300))
    public static let webhookConcurrency = ServeOption<Int>.integer(
        spec("webhook-concurrency", "16", "N", "most webhook deliveries under way at once"), default: 16, in: 1...10_000)
    public static let webhookOutboxMax = ServeOption<Int>.integer(
        spec("webhook-outbox-max", "1000000", "N", "most events waiting for delivery (in memory without a store: 10,000); more are dropped"),
        default: 1_000_000, in: 1...1_000_000_000)

    public static let serverHeader = ServeOption<Switch>.choice(
        spec("server-header", "on", "on|off", "name the server and its version in responses (Server: Squall/VERSION); off leaves it out"),
        default: .on)

    /// Every option, in the order help and docs list them.
    public static let all: [OptionSpec] = [
        config.spec, configWatch.spec, host.spec, port.spec, logLevel.spec, threads.spec, maxMessageSize.spec, outboxMessages.spec,
        outboxBytes.spec, deflateMinSize.spec, pingInterval.spec, closeTimeout.spec, store.spec, sqliteSync.spec, retentionMessages.spec,
        retentionAge.spec, retentionBytes.spec, historyMetaTTL.spec, maxReplyBytes.spec, handshakeTimeout.spec, idleTimeout.spec,
        bodyTimeout.spec, writeTimeout.spec, longPollWait.spec, sseHeartbeat.spec, maxConnections.spec, maxConnectionsPerAddress.spec,
        publishRate.spec, publishBurst.spec, subscribeRate.spec, subscribeBurst.spec, socketSendBuffer.spec, allowedOrigin.spec,
        trustedProxy.spec, forwardedHeader.spec, ipv4Prefix.spec, ipv6Prefix.spec, tlsCert.spec, tlsKey.spec, auth.spec, jwtSecret.spec,
        jwtSecretFile.spec, jwtPublicKey.spec, jwks.spec, jwksRefresh.spec, jwtAudience.spec, jwtIssuer.spec, jwtLeeway.spec,
        apiKey.spec, hookConnect.spec, hookRefresh.spec, hookSubscribe.spec, hookPublish.spec, hookTimeout.spec, hookConcurrency.spec,
        hookHeader.spec, webhook.spec, webhookSecret.spec, webhookEvents.spec, webhookNamespaces.spec, webhookTimeout.spec, webhookRetryFor.spec,
        webhookBackoffMax.spec, webhookConcurrency.spec, webhookOutboxMax.spec, serverHeader.spec,
    ]

    /// The option a flag (`port` of `--port`) names.
    static let byKey: [String: OptionSpec] = Dictionary(all.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
    /// The option a file key names.
    static let byFileKey: [String: OptionSpec] = Dictionary(all.compactMap { spec in spec.fileKey.map { ($0, spec) } }, uniquingKeysWith: { first, _ in first })

    /// The file's sections besides `auth`: the default namespace's options and the namespaces'.
    static let defaultNamespaceSection = "default-namespace"
    static let namespacesSection = "namespaces"
}

/// `--sqlite-sync`: what a SQLite commit survives.
public enum SQLiteSync: String, Sendable, CaseIterable {
    /// A crash of the process.
    case normal
    /// A power loss too (an fsync per commit).
    case full
}

/// Where logs are kept, as `--store` takes it: `memory`, `sqlite:PATH` for a SQLite
/// database file (created if missing), or a `postgres://` URL for a PostgreSQL database that
/// several nodes share.
public enum StoreOption: Sendable, Equatable {
    case memory
    case sqlite(path: String)
    case postgres(url: String)

    init?(text: String) {
        if text == "memory" {
            self = .memory
        } else if text.hasPrefix("sqlite:"), text.count > "sqlite:".count {
            self = .sqlite(path: String(text.dropFirst("sqlite:".count)))
        } else if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            self = .postgres(url: text)
        } else {
            return nil
        }
    }
}

/// An option that is on or off.
public enum Switch: String, CaseIterable, Sendable {
    case on, off
}
