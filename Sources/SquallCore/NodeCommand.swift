// SPDX-License-Identifier: Apache-2.0

/// Something every node does to its own clients, sent through the ``LogBroker`` so that a
/// backend's command reaches a user wherever the user is connected: the server API's
/// `disconnect` and `unsubscribe`.
///
/// Contracts: a command is carried out at most once per node, by the nodes that are listening
/// when it is sent (a node that is down has no clients to act on); it is never stored.
public enum NodeCommand: Sendable, Hashable {
    /// Close every connection of `user` with `disconnect`.
    case disconnect(user: String, Disconnect)
    /// Take `user`'s clients off `channel`.
    case unsubscribe(user: String, channel: ChannelName)
}

/// Whoever carries out the ``NodeCommand``s other nodes send: the server's registry of users'
/// connections.
public protocol NodeCommandFollower: AnyObject, Sendable {
    /// Another node sent `command`.
    func received(_ command: NodeCommand)
}
