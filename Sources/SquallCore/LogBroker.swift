// SPDX-License-Identifier: Apache-2.0

import Foundation

/// Tells a node's hub when a channel's log grew on any node, so that it reads what it lacks from
/// the ``SharedLog``: PostgreSQL's `LISTEN`/`NOTIFY`.
///
/// Contracts: notifications carry positions, never payloads; a lost one costs latency, not a
/// message (the hub reads from the log, in order). When the broker may have missed some (its
/// link came back) it says so, and every open channel reads again.
public protocol LogBroker: Sendable {
    /// This node's id among the store's nodes: in presence, heartbeats and commands.
    var node: UUID { get }
    /// Starts telling `follower` when channels' logs grow. Called once, by the hub that uses the
    /// store; the broker holds the follower weakly.
    func follow(_ follower: any LogFollower)
    /// Starts telling `follower`, held weakly, the commands other nodes send.
    func follow(_ follower: any NodeCommandFollower)
    /// Sends `command` to every other node listening now. Returns once the store has taken it.
    /// - Throws: when the store could not be reached: no other node was told.
    func send(_ command: NodeCommand) async throws(StoreError)
    /// From now on this node's heartbeats carry `stats()`, read at each beat, to the other nodes.
    func report(_ stats: @escaping @Sendable () -> NodeStats)
    /// The other nodes alive now, each with the stats of its last heartbeat.
    /// - Throws: when the store could not be reached.
    func otherNodes() async throws(StoreError) -> [NodeReport]
}

/// Whoever a ``LogBroker`` tells about logs that grew: a ``Hub``.
public protocol LogFollower: AnyObject, Sendable {
    /// `channel`'s log reached `position`, on some node.
    func advanced(_ channel: ChannelName, to position: StreamPosition)
    /// Notifications may have been missed: every open channel should read what it lacks.
    func resynchronize()
    /// `channel`'s history was removed through `position`, on some node: this node's copy goes.
    func historyRemoved(_ channel: ChannelName, through position: StreamPosition)
}
