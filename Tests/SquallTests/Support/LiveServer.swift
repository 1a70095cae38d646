// SPDX-License-Identifier: Apache-2.0

import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Squall
import SquallCore
import Synchronization

/// A real Squall server on 127.0.0.1 and a free port, for the length of one test.
struct LiveServer: Sendable {
    let port: Int
    let connections: ConnectionPool
    let hub: Hub

    func url(_ path: String) -> String { "ws://127.0.0.1:\(port)\(path)" }
    func httpURL(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    /// A configuration for tests: a free port, small limits, short timeouts.
    static func configuration(
        maxMessageSize: Int = 1 << 20,
        outbox: Outbox.Limits = .init(),
        closeTimeout: Duration = .seconds(1)
    ) -> SquallConfiguration {
        SquallConfiguration(host: "127.0.0.1", port: 0, maxMessageSize: maxMessageSize, outbox: outbox, closeTimeout: closeTimeout)
    }

    /// Starts a server, with `handler` mounted on `path` when both are given, runs `body`
    /// against it, then shuts the server down gracefully.
    static func run<T: Sendable>(
        _ configuration: SquallConfiguration = LiveServer.configuration(),
        mounting path: String? = nil,
        _ handler: (any WebSocketHandler)? = nil,
        check: UpgradeCheck? = nil,
        _ body: @Sendable (LiveServer) async throws -> T
    ) async throws -> T {
        var logger = Logger(label: "squall.test")
        logger.logLevel = ProcessInfo.processInfo.environment["SQUALL_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        let (listening, announce) = AsyncStream.makeStream(of: SocketAddress.self)
        var server = SquallServer(configuration: configuration, logger: logger) { address in
            announce.yield(address)
        }
        if let path, let handler { server.mount(path, handler: handler, check: check) }
        let group = ServiceGroup(services: [server], logger: logger)
        let connections = server.connections
        let hub = server.hub
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var addresses = listening.makeAsyncIterator()
            guard let port = await addresses.next()?.port else { throw TestFailure("server did not start") }
            let live = LiveServer(port: port, connections: connections, hub: hub)
            do {
                let result = try await body(live)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                return result
            } catch {
                await group.triggerGracefulShutdown()
                tasks.cancelAll()
                throw error
            }
        }
    }

    /// GET `path`: status, headers and body.
    func get(_ path: String) async throws -> (status: Int, headers: [(String, String)], body: String) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: httpURL(path)), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), response.headers.map { ($0.name, $0.value) }, String(buffer: body))
    }

    /// Waits until `condition` holds, polling; fails after `timeout`.
    static func eventually(
        _ what: String,
        timeout: Duration = .seconds(10),
        _ condition: @Sendable () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("timed out waiting until \(what)")
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs `operation`, failing with `TestFailure` if it takes longer than `timeout` — even when
/// the operation does not respond to cancellation (it is then left to finish on its own), so a
/// stuck await fails its test instead of hanging the whole run.
func withTimeout<T: Sendable>(
    _ timeout: Duration,
    _ what: String,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let settled = Mutex(false)
    let claim: @Sendable () -> Bool = {
        settled.withLock { done in
            defer { done = true }
            return !done
        }
    }
    var work: Task<Void, Never>?
    defer { work?.cancel() }
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        work = Task {
            let result = await Result(catching: { try await operation() })
            if claim() { continuation.resume(with: result) }
        }
        Task {
            try? await Task.sleep(for: timeout)
            if claim() { continuation.resume(throwing: TestFailure("timed out after \(timeout): \(what)")) }
        }
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}
