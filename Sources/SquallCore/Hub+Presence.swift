// SPDX-License-Identifier: Apache-2.0

import Foundation

/// Presence: who is subscribed, on this node and (with a ``PresenceRegistry``) on others, and
/// the join and leave events watchers receive.
///
/// Changes gather for one ``presenceTurn`` per channel (``PresenceTurn``), merged per member,
/// then each reaches every watcher as one ``PresenceEvent`` (encoded once for all of them) and
/// the registry learns the state each of this node's members ended the turn in. A client that
/// subscribes and unsubscribes as fast as it may therefore costs watchers at most two events
/// per turn, however many watchers there are or however fast it goes.
extension Hub {
    /// Who is subscribed to `channel`, ordered by id.
    public func presence(_ channel: ChannelName) -> [PresenceMember] {
        let members = withExistingChannel(channel) { state in state.audience.members } ?? []
        return members.sorted { $0.id.uuidString < $1.id.uuidString }
    }

    /// One page of who is subscribed to `channel`: the members after `after` (by id), as many as
    /// fit in `maxBytes` of their JSON (``PresenceMember/jsonSize``), at least one.
    public func presence(_ channel: ChannelName, after: UUID?, maxBytes: Int) -> PresencePage {
        var members = presence(channel)
        if let after {
            let key = after.uuidString
            members.removeAll { $0.id.uuidString <= key }
        }
        var spent = 0
        var count = 0
        for member in members {
            spent += member.jsonSize
            guard count == 0 || spent <= maxBytes else { break }
            count += 1
        }
        let page = Array(members.prefix(count))
        return PresencePage(channel: channel, members: page, next: count < members.count ? page.last?.id : nil)
    }

    /// Under the channel's lock: a member joined or left; its watchers hear of it at the end of
    /// the channel's turn, which this starts if none is running.
    func record(_ change: PresenceChange, isLocal: Bool, in state: inout ChannelState.Locked) {
        if isLocal { observer?.subscription(change) }
        if state.audience.turn.isEmpty {
            let channel = change.channel
            let turn = presenceTurn
            Task {
                try? await Task.sleep(for: turn)
                self.endTurn(of: channel)
            }
        }
        switch change {
        case .join(_, let member): state.audience.turn.join(member, isLocal: isLocal)
        case .leave(_, let member): state.audience.turn.leave(member, isLocal: isLocal)
        }
    }

    /// Delivers what the channel's turn gathered: each change once, as one event for all its
    /// watchers, and this node's to the registry.
    private func endTurn(of channel: ChannelName) {
        _ = withExistingChannel(channel) { state in
            for (change, isLocal) in state.audience.turn.take(channel) {
                state.audience.deliver(PresenceEvent(change))
                if isLocal { registry?.announce(change) }
            }
        }
    }

    /// Reads a channel's members on other nodes: after it opens, adding them (read once the
    /// channel is in the table, so that a join announced meanwhile arrives either in the read
    /// or as a notification); after notifications may have been lost, `replacing` what was
    /// known, with join and leave events for the difference.
    func loadMembers(of channel: ChannelName, replacing: Bool = false) async {
        guard let registry, withExistingChannel(channel, { state in state.audience.loadingMembers += 1 }) != nil else { return }
        let members = try? await registry.members(channel)
        _ = withExistingChannel(channel) { state in
            state.audience.loadingMembers -= 1
            defer {
                if state.audience.loadingMembers == 0 {
                    state.audience.leftWhileLoading = []
                    state.audience.joinedWhileLoading = []
                }
            }
            guard let members = members?.filter({ !state.audience.leftWhileLoading.contains($0.member.id) }) else { return }
            let loaded = Set(members.map(\.member.id))
            if replacing {
                for (id, gone) in state.audience.remote where !loaded.contains(id) && !state.audience.joinedWhileLoading.contains(id) {
                    state.audience.remote.removeValue(forKey: id)
                    record(.leave(channel, gone.member), isLocal: false, in: &state)
                }
            }
            for remote in members where state.audience.remote[remote.member.id] == nil {
                state.audience.remote[remote.member.id] = remote
                record(.join(channel, remote.member), isLocal: false, in: &state)
            }
        }
    }

    /// Every channel the hub holds now.
    func openChannels() -> [ChannelName] {
        allShards.flatMap { shard in shard.withLock { Array($0.keys) } }
    }
}

extension Hub: PresenceFollower {
    /// Called by a presence registry: `member` joined `channel` on another node.
    public func joined(_ channel: ChannelName, _ member: PresenceMember, on node: UUID) {
        _ = withExistingChannel(channel) { state in
            if state.audience.loadingMembers > 0 {
                state.audience.leftWhileLoading.remove(member.id)
                state.audience.joinedWhileLoading.insert(member.id)
            }
            guard state.audience.remote.updateValue(NodeMember(node: node, member: member), forKey: member.id) == nil else { return }
            record(.join(channel, member), isLocal: false, in: &state)
        }
    }

    /// Called by a presence registry: the member `client` left `channel` on another node.
    public func left(_ channel: ChannelName, client: UUID, on node: UUID) {
        _ = withExistingChannel(channel) { state in
            // A read of the members under way may have been made before this leave.
            if state.audience.loadingMembers > 0 {
                state.audience.leftWhileLoading.insert(client)
                state.audience.joinedWhileLoading.remove(client)
            }
            guard state.audience.remote[client]?.node == node, let gone = state.audience.remote.removeValue(forKey: client) else { return }
            record(.leave(channel, gone.member), isLocal: false, in: &state)
        }
    }

    /// Called by a presence registry: these nodes stopped saying they are alive (they died or
    /// lost the database); their members leave every channel here.
    public func nodesGone(_ nodes: Set<UUID>) {
        guard !nodes.isEmpty else { return }
        for channel in openChannels() {
            _ = withExistingChannel(channel) { state in
                for (id, remote) in state.audience.remote where nodes.contains(remote.node) {
                    state.audience.remote.removeValue(forKey: id)
                    record(.leave(channel, remote.member), isLocal: false, in: &state)
                }
            }
        }
    }

    /// Called by a presence registry whose notifications may have been lost, or that may have
    /// lost this node's members: this node records its own members again (another node may
    /// have deleted them as a dead node's), and reads the others' afresh.
    public func resynchronizePresence() {
        for channel in openChannels() {
            let members = withExistingChannel(channel) { state in state.audience.subscribers.values.map(\.member) } ?? []
            for member in members { registry?.announce(.join(channel, member)) }
            Task { await self.loadMembers(of: channel, replacing: true) }
        }
    }
}
