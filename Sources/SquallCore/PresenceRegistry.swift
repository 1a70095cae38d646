// SPDX-License-Identifier: Apache-2.0

import Foundation

/// Who is subscribed to which channel on which node, shared by the nodes of one system:
/// PostgreSQL's `squall_presence` table, its notifications and each node's heartbeat.
///
/// Contracts:
/// - The hub tells the registry of its own members' changes (``announce(_:)``), merged per
///   member; the registry keeps the latest state of each member it has not recorded yet — never
///   a log of changes — so what it holds is bounded by the members there are, and no current
///   member's state is ever dropped.
/// - It tells every other node's hub (``PresenceFollower/joined(_:_:on:)``,
///   ``PresenceFollower/left(_:client:on:)``), gives the members on other nodes when a channel
///   opens (``members(_:)``), and says which nodes stopped saying they are alive
///   (``PresenceFollower/nodesGone(_:)``), so that a node that died drops out of presence.
public protocol PresenceRegistry: Sendable {
    /// This node's id in the registry (a random UUID per process).
    var node: UUID { get }

    /// Who is subscribed to `channel` on other live nodes.
    func members(_ channel: ChannelName) async throws(StoreError) -> [NodeMember]

    /// A member of this node joined or left a channel. Must not block; a failure to record it
    /// is the registry's to log and retry.
    func announce(_ change: PresenceChange)

    /// Starts telling `follower` of other nodes' members. Called once; held weakly.
    func follow(_ follower: any PresenceFollower)
}

/// Whoever a ``PresenceRegistry`` tells about members on other nodes: a ``Hub``.
public protocol PresenceFollower: AnyObject, Sendable {
    /// `member` joined `channel` on another node, `node`.
    func joined(_ channel: ChannelName, _ member: PresenceMember, on node: UUID)
    /// The member with id `client` left `channel` on `node`.
    func left(_ channel: ChannelName, client: UUID, on node: UUID)
    /// These nodes stopped saying they are alive: their members are gone. (A node not heard of
    /// yet is not gone: its members may be announced before its first heartbeat lands.)
    func nodesGone(_ nodes: Set<UUID>)
    /// What the registry told may have been missed, or what this node told it lost: record this
    /// node's members again and read the other nodes' afresh.
    func resynchronizePresence()
}

/// A subscriber on another node, as presence lists it.
public struct NodeMember: Sendable, Hashable {
    /// The node it is connected to.
    public let node: UUID
    /// The member.
    public let member: PresenceMember

    /// A member on `node`.
    public init(node: UUID, member: PresenceMember) {
        self.node = node
        self.member = member
    }
}
