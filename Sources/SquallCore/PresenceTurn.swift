// SPDX-License-Identifier: Apache-2.0

import Foundation

/// One channel's presence changes waiting for their turn to reach its watchers, merged per
/// member: a member that joins and leaves within one turn was never seen, one that leaves and
/// joins again with the same `info` never left. So however fast a client subscribes and
/// unsubscribes, each watcher hears at most two events per member per turn, and the registry
/// of a shared store records only the state each member ended the turn in.
///
/// Not thread-safe: the ``Hub`` keeps it under the channel's lock.
struct PresenceTurn {
    private struct Entry {
        /// The member as watchers know it (before the turn), or `nil` if they know it absent.
        let before: PresenceMember?
        /// The member as it is now, or `nil` if it is gone.
        var after: PresenceMember?
        /// A member of this node (whose changes the registry is told), not another node's.
        let isLocal: Bool
    }

    private var entries: [UUID: Entry] = [:]
    private var order: [UUID] = []

    /// Nothing waits.
    var isEmpty: Bool { entries.isEmpty }

    /// `member` joined.
    mutating func join(_ member: PresenceMember, isLocal: Bool) {
        record(member.id, before: nil, after: member, isLocal: isLocal)
    }

    /// `member` left.
    mutating func leave(_ member: PresenceMember, isLocal: Bool) {
        record(member.id, before: member, after: nil, isLocal: isLocal)
    }

    private mutating func record(_ id: UUID, before: PresenceMember?, after: PresenceMember?, isLocal: Bool) {
        if entries[id] != nil {
            entries[id]?.after = after
        } else {
            entries[id] = Entry(before: before, after: after, isLocal: isLocal)
            order.append(id)
        }
    }

    /// The turn's changes, in the order members first changed, each with whether it is this
    /// node's; the turn starts empty again.
    mutating func take(_ channel: ChannelName) -> [(change: PresenceChange, isLocal: Bool)] {
        defer {
            entries = [:]
            order = []
        }
        var changes: [(change: PresenceChange, isLocal: Bool)] = []
        for id in order {
            guard let entry = entries[id], entry.before != entry.after else { continue }
            if let before = entry.before { changes.append((.leave(channel, before), entry.isLocal)) }
            if let after = entry.after { changes.append((.join(channel, after), entry.isLocal)) }
        }
        return changes
    }
}
