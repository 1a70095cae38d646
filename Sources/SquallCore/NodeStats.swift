// SPDX-License-Identifier: Apache-2.0

import Foundation

/// What a node of a shared store tells the others about itself with each heartbeat, so that any
/// of them can answer the server API's `info` for all.
public struct NodeStats: Sendable, Equatable, Codable {
    /// Open WebSocket connections and SSE streams.
    public var connections: Int
    /// Channels the node holds.
    public var channels: Int
    /// Messages that joined its logs since it started.
    public var messages: Int
    /// Messages handed to its subscribers since it started.
    public var deliveries: Int
    /// Seconds since it started.
    public var uptime: Int

    public init(connections: Int, channels: Int, messages: Int, deliveries: Int, uptime: Int) {
        self.connections = connections
        self.channels = channels
        self.messages = messages
        self.deliveries = deliveries
        self.uptime = uptime
    }
}

/// Another node alive now, with the ``NodeStats`` of its last heartbeat (`nil` if it has not
/// reported any yet).
public struct NodeReport: Sendable, Equatable {
    public let node: UUID
    public let stats: NodeStats?

    public init(node: UUID, stats: NodeStats?) {
        self.node = node
        self.stats = stats
    }
}
