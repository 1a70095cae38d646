// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import ServiceLifecycle
import Squall
import UnixSignals

/// Reloads the configuration on SIGHUP and, with `config-watch`, when the file changes: the
/// options that can change while running (``OptionSpec/live``: allowed origins, rates, tokens'
/// keys, namespaces) are applied to the running server with ``SquallServer/reload(_:)``, each
/// changed key logged; a changed option that cannot (port, TLS files, store, …) is named in a
/// warning and keeps its value until a restart.
///
/// Contracts: a reload whose configuration is invalid — or whose keys cannot be loaded —
/// changes nothing and logs why. No connection is closed by a reload. Reloads run one at a
/// time, in the order they were asked for.
public struct ConfigReloader: Service {
    let server: SquallServer
    let arguments: [String]
    let environment: [String: String]
    let initial: Settings
    let logger: Logger
    /// How often the file is looked at with `config-watch`.
    let watchInterval: Duration

    public init(
        server: SquallServer, arguments: [String], environment: [String: String], initial: Settings, logger: Logger,
        watchInterval: Duration = .seconds(1)
    ) {
        self.server = server
        self.arguments = arguments
        self.environment = environment
        self.initial = initial
        self.logger = logger
        self.watchInterval = watchInterval
    }

    public func run() async throws {
        let (requests, asking) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(1))
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await _ in signals { asking.yield("SIGHUP") }
                }
                if initial.watchesConfig, let path = initial.configFile {
                    group.addTask { await watch(path, asking) }
                }
                var running = initial
                for await reason in requests {
                    running = await reload(running, because: reason)
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            asking.finish()
        }
    }

    /// Reads the file every ``watchInterval``; other contents ask for a reload. (Contents, not
    /// the modification time: an edit of the same size within the file system's timestamp
    /// granularity would be missed; a configuration file is small.)
    private func watch(_ path: String, _ asking: AsyncStream<String>.Continuation) async {
        func stamp() -> Data? { FileManager.default.contents(atPath: path) }
        var last = stamp()
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: watchInterval)
            } catch {
                return
            }
            let now = stamp()
            if now != last, now != nil {
                last = now
                asking.yield("\(path) changed")
            }
        }
    }

    /// Reloads, and returns what runs now.
    private func reload(_ running: Settings, because reason: String) async -> Settings {
        let loaded: Settings
        do {
            loaded = try await Settings.load(arguments: arguments, environment: environment)
        } catch {
            logger.error("configuration reload (\(reason)) failed; nothing changed", metadata: ["error": "\(error)"])
            return running
        }
        let before = Dictionary(running.effective.map { ($0.key, $0) }, uniquingKeysWith: { _, last in last })
        let after = Dictionary(loaded.effective.map { ($0.key, $0) }, uniquingKeysWith: { _, last in last })
        var changed: [(key: String, from: String, to: String)] = []
        var refused: [String] = []
        for key in Set(before.keys).union(after.keys).sorted() {
            let old = before[key]?.value ?? "default"
            let new = after[key]?.value ?? "default"
            guard old != new else { continue }
            if before[key]?.live ?? after[key]?.live ?? false {
                changed.append((key, old, new))
            } else {
                refused.append(key)
            }
        }
        let keysChanged: Bool
        do {
            keysChanged = try await server.reload(loaded.configuration)
        } catch {
            logger.error("configuration reload (\(reason)) failed; nothing changed", metadata: ["error": "\(error)"])
            return running
        }
        for key in refused {
            logger.warning(
                "\(key) cannot change while running; it keeps \(before[key]?.value ?? "its value") until a restart",
                metadata: ["reload": "\(reason)"])
        }
        for change in changed {
            logger.notice("reloaded \(change.key): \(change.from) -> \(change.to)", metadata: ["reload": "\(reason)"])
        }
        if keysChanged {
            logger.notice("reloaded the keys that verify tokens", metadata: ["reload": "\(reason)"])
        }
        if changed.isEmpty, refused.isEmpty, !keysChanged {
            logger.notice("configuration reloaded (\(reason)); nothing changed")
        }
        // What runs now: the live options as loaded, the others as they were.
        let effective = loaded.effective.filter(\.live) + running.effective.filter { !$0.live }
        return Settings(
            configuration: loaded.configuration, store: running.store, sqliteSync: running.sqliteSync,
            webhookOutboxMax: running.webhookOutboxMax, logLevel: running.logLevel,
            threads: running.threads, configFile: running.configFile, watchesConfig: running.watchesConfig, effective: effective)
    }
}
