// SPDX-License-Identifier: Apache-2.0

import Foundation
import HTTPTypes
import Hummingbird
import OpenAPIHummingbird
import OpenAPIRuntime
import SquallServerAPI

/// The server API — `POST /api/COMMAND` with a JSON body — as docs/openapi.yaml defines it: the
/// routes and types are generated from the spec (SquallServerAPI), and this is the one
/// implementation of its `APIProtocol`, each operation a ``ServerCommands`` command.
///
/// Contracts: every route sits behind ``APIGate`` (keys, body size, errors as the registry's
/// JSON); every refusal is an ``APIError``, answered by `JSONErrorMiddleware`; a `batch` answers
/// every command in order, each with its result or its error.
struct ServerAPI: APIProtocol {
    typealias Schemas = Components.Schemas

    let commands: ServerCommands
    /// The sizes a message is checked against.
    let limits: ServerCommand.Limits

    /// Adds the API's routes, behind `gate`, to `router`; another method on one of their paths
    /// gets 405 `method_not_allowed` with `Allow: POST`.
    func add(to router: Router<SquallRequestContext>, gate: APIGate) throws {
        let routes = RouteRecorder(router.group().add(middleware: gate))
        // Sorted keys, no pretty printing: the same compact JSON as every other route.
        try registerHandlers(on: routes, configuration: Configuration(jsonEncodingOptions: [.sortedKeys]))
        for path in routes.paths {
            for method in [HTTPRequest.Method.get, .head, .put, .patch, .delete, .trace, Self.query] {
                router.on(RouterPath(path), method: method) { request, _ -> Response in
                    throw APIError(.methodNotAllowed, message: "\(request.uri.path) takes POST", headers: [.allow: "POST"])
                }
            }
        }
    }

    func publish(_ input: Operations.Publish.Input) async throws -> Operations.Publish.Output {
        guard case .json(let body) = input.body else { throw APIGate.notJSON }
        let publication = try ServerCommand.publication(body, limits)
        return .ok(.init(body: .json(try await commands.publish([publication])[0].get())))
    }

    func broadcast(_ input: Operations.Broadcast.Input) async throws -> Operations.Broadcast.Output {
        guard case .json(let body) = input.body else { throw APIGate.notJSON }
        let publications = try ServerCommand.broadcast(body, limits)
        return .ok(.init(body: .json(await commands.broadcast(publications))))
    }

    func disconnect(_ input: Operations.Disconnect.Input) async throws -> Operations.Disconnect.Output {
        guard case .json(let body) = input.body else { throw APIGate.notJSON }
        let (user, disconnect) = try ServerCommand.disconnect(body)
        return .ok(.init(body: .json(try await commands.disconnect(user, disconnect))))
    }

    func unsubscribe(_ input: Operations.Unsubscribe.Input) async throws -> Operations.Unsubscribe.Output {
        guard case .json(let body) = input.body else { throw APIGate.notJSON }
        let (user, channel) = try ServerCommand.unsubscribe(body)
        return .ok(.init(body: .json(try await commands.unsubscribe(user, from: channel))))
    }

    func presence(_ input: Operations.Presence.Input) async throws -> Operations.Presence.Output {
        guard case .json(let body) = input.body else { throw APIGate.notJSON }
        let (channel, after) = try ServerCommand.presence(body)
        return .ok(.init(body: .json(commands.presence(channel, after: after))))
    }

    func presenceStats(_ input: Operations.PresenceStats.Input) async throws -> Operations.PresenceStats.Output {
        guard case .json(let body) = input.body else { throw APIGate.notJSON }
        return .ok(.init(body: .json(commands.presenceStats(try ServerCommand.channel(body.channel)))))
    }

    func history(_ input: Operations.History.Input) async throws -> Operations.History.Output {
        guard case .json(let body) = input.body else { throw APIGate.notJSON }
        let (channel, since, limit) = try ServerCommand.history(body)
        return .ok(.init(body: .json(try await commands.history(channel, since: since, limit: limit))))
    }

    func historyRemove(_ input: Operations.HistoryRemove.Input) async throws -> Operations.HistoryRemove.Output {
        guard case .json(let body) = input.body else { throw APIGate.notJSON }
        return .ok(.init(body: .json(try await commands.removeHistory(try ServerCommand.channel(body.channel)))))
    }

    func channels(_ input: Operations.Channels.Input) async throws -> Operations.Channels.Output {
        guard case .json(let body) = input.body else { throw APIGate.notJSON }
        let pattern = try ServerCommand.channels(body)
        return .ok(.init(body: .json(commands.channels(matching: pattern))))
    }

    func info(_ input: Operations.Info.Input) async throws -> Operations.Info.Output {
        .ok(.init(body: .json(try await commands.info())))
    }

    func batch(_ input: Operations.Batch.Input) async throws -> Operations.Batch.Output {
        guard case .json(let body) = input.body else { throw APIGate.notJSON }
        guard (1...Self.maxBatch).contains(body.commands.count) else {
            throw APIError.invalidParameter("commands", "1 to \(Self.maxBatch) commands")
        }
        // Every command checked before any runs: a batch that breaks the spec changes nothing.
        var checked: [ServerCommand] = []
        checked.reserveCapacity(body.commands.count)
        for (index, command) in body.commands.enumerated() {
            do {
                checked.append(try ServerCommand(command, limits: limits))
            } catch {
                throw APIError(error.code, message: "commands[\(index)]: \(error.message)", headers: error.headers)
            }
        }
        return .ok(.init(body: .json(Schemas.BatchResult(replies: await run(checked)))))
    }
}

extension ServerAPI {
    /// `QUERY`, the safe method with a body (draft-ietf-httpbis-safe-method-w-body).
    static let query = HTTPRequest.Method("QUERY")!  // trap-ok: a valid method token, written here
}

/// Registers the generated routes on the router and keeps their paths.
private final class RouteRecorder: ServerTransport {
    private let group: RouterGroup<SquallRequestContext>
    private(set) var paths: [String] = []

    init(_ group: RouterGroup<SquallRequestContext>) {
        self.group = group
    }

    func register(
        _ handler: @escaping @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?),
        method: HTTPRequest.Method, path: String
    ) throws {
        try group.register(handler, method: method, path: path)
        paths.append(path)
    }
}

extension ServerAPI {
    /// Most commands one batch holds.
    static let maxBatch = 1000

    /// Runs a batch's commands in order; a run of publishes goes to the logs together
    /// (``ServerCommands/publish(_:)``).
    private func run(_ batch: [ServerCommand]) async -> [Schemas.BatchReply] {
        var replies: [Schemas.BatchReply] = []
        replies.reserveCapacity(batch.count)
        var index = 0
        while index < batch.count {
            var publications: [ServerCommand.Publication] = []
            while index < batch.count, case .publish(let publication) = batch[index] {
                publications.append(publication)
                index += 1
            }
            if !publications.isEmpty {
                for result in await commands.publish(publications) {
                    replies.append(Self.reply(result.map { Schemas.BatchReply.ResultPayload(value1: $0) }))
                }
                continue
            }
            replies.append(Self.reply(await commands.run(batch[index])))
            index += 1
        }
        return replies
    }

    private static func reply(_ result: Result<Schemas.BatchReply.ResultPayload, APIError>) -> Schemas.BatchReply {
        switch result {
        case .success(let value): Schemas.BatchReply(result: value)
        case .failure(let error): Schemas.BatchReply(error: Schemas.ErrorBody(error))
        }
    }
}
