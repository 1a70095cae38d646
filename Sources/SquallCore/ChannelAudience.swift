// SPDX-License-Identifier: Apache-2.0

import Foundation

/// Who listens to one channel: this node's subscribers, members on other nodes, and presence
/// changes waiting for their turn.
struct ChannelAudience {
    struct Member {
        let subscriber: any Subscriber
        let member: PresenceMember
        let presenceEvents: Bool
        /// A position this subscriber resumed from that the log had not reached (another node
        /// gave it out): messages up to it are not handed over, since it had them.
        var aheadOf: StreamPosition?
    }

    /// Changed only through ``add(_:)``, ``remove(_:)``, ``removeAll()`` and
    /// ``caughtUp(_:)``, which keep ``watchers`` with it.
    private(set) var subscribers: [ObjectIdentifier: Member] = [:]
    /// The subscribers that watch presence. A join or leave is told to these alone, so that on
    /// a channel nobody watches (the seed's chat) it costs nothing: walking every member for
    /// each of them made opening N connections to one channel cost N² steps.
    private var watchers: [ObjectIdentifier: any Subscriber] = [:]
    /// With a presence registry: the channel's members on other nodes, by id.
    var remote: [UUID: NodeMember] = [:]
    /// Changes not delivered to watchers yet.
    var turn = PresenceTurn()
    /// Reads of the other nodes' members under way, and who left or joined meanwhile (so that a
    /// read made before a leave or a join does not undo it).
    var loadingMembers = 0
    var leftWhileLoading: Set<UUID> = []
    var joinedWhileLoading: Set<UUID> = []

    /// Nobody listens and nothing waits to be told.
    var isEmpty: Bool { subscribers.isEmpty && turn.isEmpty }

    /// Every member, on this node and others.
    var members: [PresenceMember] { subscribers.values.map(\.member) + remote.values.map(\.member) }

    /// Hands `message` to every subscriber that does not have it yet.
    func deliver(_ message: Message) {
        for subscription in subscribers.values {
            if let ahead = subscription.aheadOf, ahead.epoch == message.position.epoch, message.offset <= ahead.offset { continue }
            subscription.subscriber.receive(message)
        }
    }

    /// Hands `event` to every subscriber that watches presence.
    func deliver(_ event: PresenceEvent) {
        for watcher in watchers.values { watcher.receive(event) }
    }

    /// Adds `member`, or replaces the subscriber's membership.
    /// - Returns: whether it is new to the channel.
    mutating func add(_ member: Member) -> Bool {
        let key = ObjectIdentifier(member.subscriber)
        let isNew = subscribers.updateValue(member, forKey: key) == nil
        watchers[key] = member.presenceEvents ? member.subscriber : nil
        return isNew
    }

    /// Removes the subscriber with `key`.
    /// - Returns: its membership, if it had one.
    mutating func remove(_ key: ObjectIdentifier) -> Member? {
        watchers[key] = nil
        return subscribers.removeValue(forKey: key)
    }

    /// Removes every subscriber on this node.
    mutating func removeAll() {
        subscribers.removeAll()
        watchers.removeAll()
    }

    /// The subscriber with `key` is no longer ahead of the log.
    mutating func caughtUp(_ key: ObjectIdentifier) {
        subscribers[key]?.aheadOf = nil
    }
}
