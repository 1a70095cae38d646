// SPDX-License-Identifier: Apache-2.0

import Foundation
import SquallCore
import SquallServerAPI
import Synchronization

/// Runs the server API's commands (``ServerCommand``, already checked) over the hub, the users'
/// sessions and the shared store's broker: what ``ServerAPI`` serves one per route and many in a
/// `batch`.
///
/// Contracts: a backend with an API key is trusted as the application itself — namespace rules,
/// rates and origins, which are for clients, do not apply (the sizes do, when the command is
/// checked). `disconnect` and `unsubscribe` act on this node at once and reach the others
/// through the broker, if there is one.
struct ServerCommands: Sendable {
    typealias Schemas = Components.Schemas
    typealias Publication = ServerCommand.Publication

    let hub: Hub
    let users: ConnectedUsers
    let pool: ConnectionPool
    /// The SSE streams open, which `info` counts as connections.
    let streams: OpenStreams
    /// Where commands to other nodes go; `nil` on a node of its own.
    let broker: (any LogBroker)?
    let maxReplyBytes: Int
    /// This process, as `info` names it.
    let node: UUID
    let started: ContinuousClock.Instant

    /// Runs `command`, for a batch.
    func run(_ command: ServerCommand) async -> Result<Schemas.BatchReply.ResultPayload, APIError> {
        typealias Result = Schemas.BatchReply.ResultPayload
        do throws(APIError) {
            let result: Result =
                switch command {
                case .publish(let publication): Result(value1: try await publish([publication])[0].get())
                case .broadcast(let publications): Result(value2: await broadcast(publications))
                case .disconnect(let user, let disconnect): Result(value3: try await self.disconnect(user, disconnect))
                case .unsubscribe(let user, let channel): Result(value4: try await unsubscribe(user, from: channel))
                case .presence(let channel, let after): Result(value5: presence(channel, after: after))
                case .presenceStats(let channel): Result(value6: presenceStats(channel))
                case .history(let channel, let since, let limit): Result(value7: try await history(channel, since: since, limit: limit))
                case .historyRemove(let channel): Result(value8: try await removeHistory(channel))
                case .channels(let pattern): Result(value9: channels(matching: pattern))
                case .info: Result(value10: try await info())
                }
            return .success(result)
        } catch {
            return .failure(error)
        }
    }

    // MARK: - Publishing

    /// Publishes each message in order: each is handed to its channel's log before the next (so
    /// messages to one channel keep the order given, and a store commits them together), and
    /// the answers come once every one is in, in the same order.
    func publish(_ publications: [Publication]) async -> [Result<Schemas.Published, APIError>] {
        let gathered = Gathered<Schemas.Published>(count: publications.count)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            gathered.whenDone { done.resume() }
            for (index, publication) in publications.enumerated() {
                hub.publish(publication.payload, to: publication.channel, publisher: nil, idempotencyKey: publication.key) { result in
                    gathered.set(index, result.map(Schemas.Published.init).mapError(APIError.init))
                }
            }
        }
        return gathered.results
    }

    /// One message to many channels: each channel's outcome, in the order given.
    func broadcast(_ publications: [Publication]) async -> Schemas.BroadcastResult {
        let results = await publish(publications)
        return Schemas.BroadcastResult(
            results: zip(publications, results).map { publication, result in
                switch result {
                case .success(let published): Schemas.ChannelOutcome(channel: publication.channel.rawValue, published: published)
                case .failure(let error): Schemas.ChannelOutcome(channel: publication.channel.rawValue, error: Schemas.ErrorBody(error))
                }
            })
    }

    // MARK: - Users

    func disconnect(_ user: String, _ disconnect: Disconnect) async throws(APIError) -> Schemas.DisconnectResult {
        let closed = users.disconnect(user: user, with: disconnect)
        try await tellOtherNodes(.disconnect(user: user, disconnect), doneHere: "closed \(closed) connection(s) on this node")
        return Schemas.DisconnectResult(connections: closed)
    }

    func unsubscribe(_ user: String, from channel: ChannelName) async throws(APIError) -> Schemas.UnsubscribeResult {
        let ended = users.unsubscribe(user: user, from: channel)
        try await tellOtherNodes(.unsubscribe(user: user, channel: channel), doneHere: "ended \(ended) subscription(s) on this node")
        return Schemas.UnsubscribeResult(subscriptions: ended)
    }

    private func tellOtherNodes(_ command: NodeCommand, doneHere: String) async throws(APIError) {
        guard let broker else { return }
        do {
            try await broker.send(command)
        } catch {
            throw APIError(.storeUnavailable, message: "\(doneHere), but the other nodes could not be told: \(error)")
        }
    }

    // MARK: - Presence and history

    func presence(_ channel: ChannelName, after: UUID?) -> Schemas.PresencePage {
        let page = hub.presence(channel, after: after, maxBytes: maxReplyBytes)
        return Schemas.PresencePage(channel: channel.rawValue, clients: page.members.map(Schemas.Member.init), next: page.next?.uuidString)
    }

    func presenceStats(_ channel: ChannelName) -> Schemas.PresenceStats {
        let members = hub.presence(channel)
        return Schemas.PresenceStats(channel: channel.rawValue, clients: members.count, users: Set(members.compactMap(\.user)).count)
    }

    func history(_ channel: ChannelName, since: StreamPosition?, limit: Int) async throws(APIError) -> Schemas.History {
        let history: History
        do {
            history = try await hub.history(channel, since: since, limit: limit, budget: ReadBudget.envelopes(maxBytes: maxReplyBytes))
        } catch {
            throw APIError.channelUnavailable
        }
        return Schemas.History(
            channel: channel.rawValue, epoch: history.position.epoch, offset: Int64(clamping: history.position.offset),
            recovered: history.recovered, messages: history.messages.map(Schemas.Message.init))
    }

    func removeHistory(_ channel: ChannelName) async throws(APIError) -> Schemas.HistoryRemoved {
        do {
            let position = try await hub.removeHistory(channel)
            return Schemas.HistoryRemoved(channel: channel.rawValue, epoch: position.epoch, offset: Int64(clamping: position.offset))
        } catch {
            throw APIError.channelUnavailable
        }
    }

    // MARK: - The node

    func channels(matching pattern: ChannelPattern?) -> Schemas.Channels {
        let found = hub.channels { pattern?.matches($0) ?? true }
        return Schemas.Channels(channels: found.map { Schemas.ChannelSummary(channel: $0.channel.rawValue, subscribers: $0.subscribers) })
    }

    /// This node's figures now: what its heartbeats tell the other nodes, and the admin page.
    func stats() -> NodeStats {
        NodeStats(
            connections: pool.count + streams.count, channels: hub.channelCount, messages: hub.messageCount, deliveries: hub.deliveryCount,
            uptime: Int((ContinuousClock.now - started).components.seconds))
    }

    /// This node with its figures now, then the other nodes of a shared store with theirs as of
    /// their last heartbeat.
    func info() async throws(APIError) -> Schemas.Info {
        var others: [NodeReport] = []
        if let broker {
            do {
                others = try await broker.otherNodes()
            } catch {
                throw APIError(.storeUnavailable, message: "this node's figures are known, the other nodes' are not: \(error)")
            }
        }
        let this = stats()
        return Schemas.Info(
            nodes: [Self.node(node, this, isThis: true)] + others.map { Self.node($0.node, $0.stats, isThis: false) })
    }

    private static func node(_ id: UUID, _ stats: NodeStats?, isThis: Bool) -> Schemas.Node {
        Schemas.Node(
            id: id.uuidString, this: isThis, connections: stats?.connections, channels: stats?.channels, messages: stats?.messages,
            deliveries: stats?.deliveries, uptime: stats?.uptime)
    }
}

/// Answers that arrive in any order, on any thread, kept in the order they were asked.
private final class Gathered<Value: Sendable>: Sendable {
    private struct State {
        var results: [Result<Value, APIError>?]
        var missing: Int
        var done: (@Sendable () -> Void)?
    }

    private let state: Mutex<State>

    init(count: Int) {
        state = Mutex(State(results: Array(repeating: nil, count: count), missing: count))
    }

    /// Runs `done` once every answer is in (at once if they already are).
    func whenDone(_ done: @escaping @Sendable () -> Void) {
        let now = state.withLock { state in
            if state.missing == 0 { return true }
            state.done = done
            return false
        }
        if now { done() }
    }

    func set(_ index: Int, _ result: Result<Value, APIError>) {
        let done = state.withLock { state -> (@Sendable () -> Void)? in
            guard state.results[index] == nil else { return nil }
            state.results[index] = result
            state.missing -= 1
            return state.missing == 0 ? state.done : nil
        }
        done?()
    }

    /// The answers; call once every one is in.
    var results: [Result<Value, APIError>] {
        state.withLock { $0.results.map { $0 ?? .failure(APIError(.internalError, message: "no answer")) } }
    }
}
