// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import Squall
import SquallCore
import SquallPostgres
import SquallSQLite
import SquallSettings

/// `squall serve`: runs the server until SIGINT or SIGTERM, then shuts down gracefully
/// (WebSockets get 1001) and exits 0. SIGHUP reloads the configuration (``ConfigReloader``).
///
/// Its options are not declared here but in SquallSettings' table (``Options``), which the
/// help below, the docs and every source of settings share; ArgumentParser hands them over
/// unparsed.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the chat at ws://HOST:PORT/msg and the demo page at http://HOST:PORT/.",
        discussion: OptionReference.help
    )

    @Argument(parsing: .allUnrecognized, help: .hidden)
    var options: [String] = []

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let settings = try await Self.settings(options, environment)
        // main.swift has already sized the event-loop group from the same option (it must
        // happen before anything runs).
        LoggingSystem.bootstrap { label in
            var handler = DeferredMetadataLogHandler(label: label)
            handler.logLevel = settings.logLevel
            return handler
        }
        let logger = Logger(label: "squall")
        logger.notice("Squall \(Version.description) starting")
        Self.raiseDescriptorLimit(for: settings.configuration.limits.maxConnections, logger: logger)
        var configuration = settings.configuration
        configuration.storage = try await Self.open(settings)
        let server = SquallServer(configuration: configuration, logger: logger)
        let reloader = ConfigReloader(server: server, arguments: options, environment: environment, initial: settings, logger: logger)
        let group = ServiceGroup(
            configuration: .init(services: [server, reloader], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
    }

    /// Raises the descriptor limit as far as it goes and warns, naming the numbers, when it is
    /// still too low for `maxConnections`: past it, connections are refused at accept.
    static func raiseDescriptorLimit(for maxConnections: Int, logger: Logger) {
        guard let limit = DescriptorLimit.raise() else { return }
        if let before = limit.before {
            logger.info("raised the descriptor limit from \(before) to \(limit.soft), the hard limit")
        }
        if maxConnections > limit.connections {
            logger.warning(
                """
                --max-connections \(maxConnections) is more than the descriptor limit allows: \(limit.soft) descriptors \
                (soft limit \(limit.soft), hard limit \(limit.hard)) hold about \(max(0, limit.connections)) connections \
                besides the \(DescriptorLimit.reserved) kept for the server itself; connections past that are refused. \
                Raise the hard limit (systemd: LimitNOFILE; docs/deployment.md) or lower --max-connections.
                """)
        }
    }

    /// The settings, or a usage error naming the key, the value and its source.
    static func settings(_ options: [String], _ environment: [String: String]) async throws -> Settings {
        do {
            return try await Settings.load(arguments: options, environment: environment)
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// The store `store` names, opened: a SQLite file is created if missing; a PostgreSQL
    /// database must be reachable, and gets Squall's tables if it lacks them.
    static func open(_ settings: Settings) async throws -> LogStorage {
        let retention = settings.configuration.retention
        do throws(StoreError) {
            switch settings.store {
            case .memory:
                return .memory
            case .sqlite(let path):
                let durability: SQLiteLogStore.Durability = settings.sqliteSync == .full ? .powerLoss : .processCrash
                return .local(
                    try SQLiteLogStore(path: path, durability: durability, retention: retention, maxOutboxEvents: settings.webhookOutboxMax))
            case .postgres(let url):
                return .shared(
                    try await PostgresLogStore(address: PostgresAddress(url), retention: retention, maxOutboxEvents: settings.webhookOutboxMax))
            }
        } catch {
            throw ValidationError(error.description)
        }
    }
}
