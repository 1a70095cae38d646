// swift-tools-version:6.2
// SPDX-License-Identifier: Apache-2.0
import PackageDescription

// Squall: a real-time messaging server and Swift library.
// Targets follow the design's separation: SquallCore knows no sockets, Squall (the server)
// knows no storage, a store (SquallSQLite) knows no HTTP, and the `squall` executable only
// parses options, picks the store and runs the server.
let package = Package(
    name: "squall",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SquallCore", targets: ["SquallCore"]),
        .library(name: "Squall", targets: ["Squall"]),
        .library(name: "SquallSQLite", targets: ["SquallSQLite"]),
        .library(name: "SquallPostgres", targets: ["SquallPostgres"]),
        .library(name: "SquallSettings", targets: ["SquallSettings"]),
        .library(name: "SquallBench", targets: ["SquallBench"]),
        .executable(name: "squall", targets: ["squall"]),
    ],
    // Each dependency from the version CI tests, up to its next major (a 0.x package: its next
    // minor, which may break it), so that a library user can resolve Squall beside newer
    // releases; Package.resolved, committed, pins what `swift build` of the `squall` program
    // uses (SwiftPM ignores a dependency's Package.resolved, so it binds no embedder).
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", .upToNextMinor(from: "0.2.0")),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // One configuration from flags, environment and a YAML or JSON file, reloaded on SIGHUP.
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0", traits: [.defaults, "YAML", "Reloading"]),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        // /metrics in Prometheus's text format.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // JWT connection and subscription tokens.
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        // HMAC-SHA256 for webhook signatures (Standard Webhooks).
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        // The server API, generated at build time from docs/openapi.yaml.
        .package(url: "https://github.com/apple/swift-openapi-generator", from: "1.14.3"),
        .package(url: "https://github.com/apple/swift-openapi-runtime", from: "1.13.4"),
        .package(url: "https://github.com/swift-server/swift-openapi-hummingbird", from: "2.1.0"),
    ],
    targets: [
        .target(
            name: "SquallCore",
            dependencies: [
                // ByteBuffer only: payload bytes are shared, never copied, between subscribers.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // The server API's request and response types and routes, generated from
        // docs/openapi.yaml (linked here) at build time, so that the spec is the API.
        .target(
            name: "SquallServerAPI",
            dependencies: [
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime")
            ],
            plugins: [.plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator")]
        ),
        .target(
            name: "Squall",
            dependencies: [
                "SquallCore",
                "SquallServerAPI",
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                // TLS and, chosen by ALPN, HTTP/2 for the HTTP routes.
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                // ALPN, and HTTP/2 frames to refuse a connection over the limits with.
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "DequeModule", package: "swift-collections"),
                // zlib for permessage-deflate (RFC 7692).
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // Connection and subscription tokens; JWKS documents fetched from a URL.
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            // Each folder is a layer; its README.md says what it owns and may import.
            exclude: ["Configuration", "WebSocket", "Protocol", "Wire", "HTTP", "Auth", "Handlers", "Transports", "ServerAPI", "Webhooks", "Server", "SPI"].map
            {
                "\($0)/README.md"
            },
            resources: [.copy("Public")]
        ),
        // The durable log store on SQLite: SquallCore's LogStore over GRDB, knowing no HTTP.
        .target(
            name: "SquallSQLite",
            dependencies: [
                "SquallCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Many nodes as one on PostgreSQL: positions assigned in the database, fan-out between
        // nodes by LISTEN/NOTIFY; a LogStore and LogBroker knowing no HTTP.
        .target(
            name: "SquallPostgres",
            dependencies: [
                "SquallCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The options of `squall serve`, declared once, resolved from flags, SQUALL_* variables,
        // a YAML or JSON file and defaults, and reloaded on SIGHUP; knows no socket and no store.
        .target(
            name: "SquallSettings",
            dependencies: [
                "SquallCore",
                "Squall",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "SquallBench",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // The HTTP publishers of `squall bench publish`.
                .product(name: "NIOHTTP1", package: "swift-nio"),
                // wss:// targets, to measure TLS handshakes and fan-out over TLS.
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                // The empty handler whose cost is the floor of Squall's HTTP routes.
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        .executableTarget(
            name: "squall",
            dependencies: [
                "SquallCore",
                "Squall",
                "SquallSQLite",
                "SquallPostgres",
                "SquallBench",
                "SquallSettings",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // `squall api`: a running server's API, called as a backend calls it.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            // `squall version` names the git commit it was built from.
            plugins: ["BuildCommit"]
        ),
        .plugin(name: "BuildCommit", capability: .buildTool()),
        // The README's embedding example, built with everything else so that it cannot rot.
        .executableTarget(
            name: "EmbedExample",
            dependencies: ["Squall"],
            path: "Examples/Embed",
            // Its Package.swift builds it as a package of its own (Tests/e2e/test_embedding.py).
            exclude: ["Package.swift"],
            sources: ["main.swift"]
        ),
        .testTarget(
            name: "SquallCoreTests",
            dependencies: ["SquallCore", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "SquallSQLiteTests",
            dependencies: ["SquallSQLite", "SquallCore", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(
            name: "SquallPostgresTests",
            dependencies: [
                "SquallPostgres", "SquallCore",
                // The store's parts, tested on their own against the database.
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "SquallSettingsTests",
            dependencies: ["SquallSettings", "Squall", "SquallCore", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "SquallTests",
            dependencies: [
                "SquallCore",
                "Squall",
                "SquallBench",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSCompression", package: "hummingbird-websocket"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // Channel handlers tested without sockets.
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                // Tokens signed as an application's backend would.
                .product(name: "JWTKit", package: "jwt-kit"),
                // The server API's requests, checked as the routes check them.
                "SquallServerAPI",
            ]
        ),
    ]
)
