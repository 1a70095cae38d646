// SPDX-License-Identifier: Apache-2.0

import Foundation
import SquallCore
import Synchronization

/// A shared store in memory, as PostgreSQL's behaves, for the hub's multi-node paths: each
/// ``node()`` is one node's view of it (a ``SharedLog``, ``LogBroker`` and
/// ``PresenceRegistry``), so several hubs on one cluster are nodes of one system — without a
/// database, as centrifuge tests its hub against its memory broker.
///
/// Like the database it gives positions itself (an epoch per channel made by its first append,
/// offsets in one order across nodes), answers appends and notifies the other nodes
/// asynchronously, keeps idempotency keys with their messages, and creates nothing on a read.
/// Unlike it, it can be told to misbehave: drop notifications, trim what nodes have not read,
/// or forget a channel as its meta TTL would.
final class InProcessCluster: Sendable {
    struct Row {
        var epoch: String
        var lastOffset: UInt64
        var messages: [Message]
        var keys: [IdempotencyKey: (offset: UInt64, payload: Payload)]
    }

    private struct State {
        var rows: [ChannelName: Row] = [:]
        var followers: [UUID: Follower] = [:]
        /// Members by channel, then client: the node it is on, and how.
        var members: [ChannelName: [UUID: NodeMember]] = [:]
        var dropsNotifications = false
        var queue: [Pending] = []
        var writing = false
        /// What each node reports of itself, read when another asks.
        var reports: [UUID: @Sendable () -> NodeStats] = [:]
    }

    private struct Pending {
        let draft: Draft
        let key: IdempotencyKey?
        let committed: @Sendable (Result<Appended, StoreError>) -> Void
    }

    private struct Follower {
        weak var logs: (any LogFollower)?
        weak var presence: (any PresenceFollower)?
        weak var commands: (any NodeCommandFollower)?
    }

    private let state = Mutex(State())

    /// A node of the cluster, for one hub.
    func node() -> Node { Node(cluster: self) }

    // MARK: - Misbehaving

    /// Notifications are lost from now on (`false`: delivered again).
    func dropNotifications(_ drop: Bool) { state.withLock { $0.dropsNotifications = drop } }

    /// Deletes `channel`'s messages through `offset`, as retention on other nodes would.
    func trim(_ channel: ChannelName, through offset: UInt64) {
        state.withLock { $0.rows[channel]?.messages.removeAll { $0.offset <= offset } }
    }

    /// Forgets `channel` altogether, as its meta TTL would.
    func forget(_ channel: ChannelName) {
        _ = state.withLock { $0.rows.removeValue(forKey: channel) }
    }

    // MARK: - What the nodes call

    fileprivate func open(_ channels: [ChannelName], retention: Retention) async throws(StoreError) -> [ChannelName: StoredLog] {
        return state.withLock { state in
            var logs: [ChannelName: StoredLog] = [:]
            for channel in channels {
                guard let row = state.rows[channel] else { continue }
                logs[channel] = Self.stored(row, retention: retention)
            }
            return logs
        }
    }

    private static func stored(_ row: Row, retention: Retention) -> StoredLog {
        let kept = Array(row.messages.suffix(retention.maxMessages))
        var keys: [UInt64: IdempotencyKey] = [:]
        for (key, first) in row.keys { keys[first.offset] = key }
        return StoredLog(epoch: row.epoch, lastOffset: row.lastOffset, messages: kept, idempotencyKeys: keys)
    }

    fileprivate func append(
        _ draft: Draft,
        key: IdempotencyKey?,
        committed: @escaping @Sendable (Result<Appended, StoreError>) -> Void
    ) throws(StoreError) {
        let start = state.withLock { state -> Bool in
            state.queue.append(Pending(draft: draft, key: key, committed: committed))
            defer { state.writing = true }
            return !state.writing
        }
        if start { Task { await self.write() } }
    }

    /// Commits queued appends one at a time, in the order they were made, as one writer does.
    private func write() async {
        while let next = state.withLock({ state -> Pending? in
            guard !state.queue.isEmpty else {
                state.writing = false
                return nil
            }
            return state.queue.removeFirst()
        }) {
            let draft = next.draft
            let (appended, position) = state.withLock { state -> (Appended, StreamPosition) in
                var row = state.rows[draft.channel] ?? Row(epoch: StreamPosition.newEpoch(), lastOffset: 0, messages: [], keys: [:])
                defer { state.rows[draft.channel] = row }
                if let key = next.key, let first = row.keys[key], let message = row.messages.first(where: { $0.offset == first.offset }) {
                    let reused = first.payload != draft.payload
                    return (
                        Appended(message: draft.message(at: message.position, id: message.id, time: message.time), isNew: false, isKeyReused: reused),
                        message.position
                    )
                }
                row.lastOffset += 1
                let message = draft.message(at: StreamPosition(epoch: row.epoch, offset: row.lastOffset))
                row.messages.append(message)
                if let key = next.key { row.keys[key] = (row.lastOffset, draft.payload) }
                return (Appended(message: message, isNew: true), message.position)
            }
            next.committed(.success(appended))
            notify(draft.channel, position)
        }
    }

    private func notify(_ channel: ChannelName, _ position: StreamPosition) {
        let followers = state.withLock { $0.dropsNotifications ? [] : $0.followers.values.compactMap(\.logs) }
        for follower in followers { Task { follower.advanced(channel, to: position) } }
    }

    fileprivate func read(_ channel: ChannelName, after position: StreamPosition, limit: Int, retention: Retention) async throws(StoreError) -> CatchUp {
        return state.withLock { state in
            guard let row = state.rows[channel] else {
                return position.unpublishedAt != nil ? .messages([], more: false) : .restart(nil)
            }
            let after: UInt64
            if position.unpublishedAt != nil {
                after = 0
            } else {
                guard row.epoch == position.epoch, row.lastOffset >= position.offset else { return .restart(Self.stored(row, retention: retention)) }
                after = position.offset
            }
            guard after < row.lastOffset else { return .messages([], more: false) }
            guard let first = row.messages.first?.offset, first <= after + 1 else { return .restart(Self.stored(row, retention: retention)) }
            let following = row.messages.filter { $0.offset > after }
            return .messages(Array(following.prefix(limit)), more: following.count > limit)
        }
    }

    /// Deletes `channel`'s messages and tells every node, as PostgreSQL's store does.
    fileprivate func removeHistory(_ channel: ChannelName) -> StreamPosition? {
        let (position, followers) = state.withLock { state -> (StreamPosition?, [any LogFollower]) in
            guard var row = state.rows[channel] else { return (nil, []) }
            row.messages.removeAll()
            state.rows[channel] = row
            return (StreamPosition(epoch: row.epoch, offset: row.lastOffset), state.followers.values.compactMap(\.logs))
        }
        if let position { for follower in followers { follower.historyRemoved(channel, through: position) } }
        return position
    }

    /// Hands `command` to every node but `node`.
    fileprivate func send(_ command: NodeCommand, from node: UUID) {
        let followers = state.withLock { $0.followers.filter { $0.key != node }.compactMap(\.value.commands) }
        for follower in followers { follower.received(command) }
    }

    fileprivate func report(_ stats: @escaping @Sendable () -> NodeStats, from node: UUID) {
        state.withLock { $0.reports[node] = stats }
    }

    fileprivate func reports(except node: UUID) -> [NodeReport] {
        state.withLock { $0.reports }.filter { $0.key != node }.map { NodeReport(node: $0.key, stats: $0.value()) }
    }

    fileprivate func follow(_ node: UUID, commands: any NodeCommandFollower) {
        state.withLock { state in
            var follower = state.followers[node] ?? Follower()
            follower.commands = commands
            state.followers[node] = follower
        }
    }

    fileprivate func follow(_ node: UUID, logs: (any LogFollower)? = nil, presence: (any PresenceFollower)? = nil) {
        state.withLock { state in
            var follower = state.followers[node] ?? Follower()
            if let logs { follower.logs = logs }
            if let presence { follower.presence = presence }
            state.followers[node] = follower
        }
    }

    fileprivate func announce(_ change: PresenceChange, from node: UUID) {
        let others = state.withLock { state -> [any PresenceFollower] in
            switch change {
            case .join(let channel, let member): state.members[channel, default: [:]][member.id] = NodeMember(node: node, member: member)
            case .leave(let channel, let member): state.members[channel]?[member.id] = nil
            }
            return state.followers.filter { $0.key != node }.compactMap(\.value.presence)
        }
        for follower in others {
            Task {
                switch change {
                case .join(let channel, let member): follower.joined(channel, member, on: node)
                case .leave(let channel, let member): follower.left(channel, client: member.id, on: node)
                }
            }
        }
    }

    fileprivate func members(_ channel: ChannelName, notOn node: UUID) async throws(StoreError) -> [NodeMember] {
        return state.withLock { Array(($0.members[channel] ?? [:]).values.filter { $0.node != node }) }
    }

    /// One node's view of the cluster.
    final class Node: SharedLog, LogBroker, PresenceRegistry {
        let cluster: InProcessCluster
        let node = UUID()

        init(cluster: InProcessCluster) {
            self.cluster = cluster
        }

        func open(_ channels: [ChannelName], retention: Retention) async throws(StoreError) -> [ChannelName: StoredLog] {
            try await cluster.open(channels, retention: retention)
        }

        func append(_ draft: Draft, idempotencyKey: IdempotencyKey?, committed: @escaping @Sendable (Result<Appended, StoreError>) -> Void) throws(StoreError) {
            try cluster.append(draft, key: idempotencyKey, committed: committed)
        }

        func read(_ channel: ChannelName, after position: StreamPosition, limit: Int, retention: Retention) async throws(StoreError) -> CatchUp {
            try await cluster.read(channel, after: position, limit: limit, retention: retention)
        }

        func removeHistory(_ channel: ChannelName) async throws(StoreError) -> StreamPosition? { cluster.removeHistory(channel) }

        func close() async {}

        func follow(_ follower: any NodeCommandFollower) { cluster.follow(node, commands: follower) }

        func send(_ command: NodeCommand) async throws(StoreError) { cluster.send(command, from: node) }

        func report(_ stats: @escaping @Sendable () -> NodeStats) { cluster.report(stats, from: node) }

        func otherNodes() async throws(StoreError) -> [NodeReport] { cluster.reports(except: node) }

        func follow(_ follower: any LogFollower) { cluster.follow(node, logs: follower) }

        func follow(_ follower: any PresenceFollower) { cluster.follow(node, presence: follower) }

        func members(_ channel: ChannelName) async throws(StoreError) -> [NodeMember] {
            try await cluster.members(channel, notOn: node)
        }

        func announce(_ change: PresenceChange) { cluster.announce(change, from: node) }
    }
}
