// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import PostgresNIO
import SquallCore

/// What nodes tell each other besides positions and presence, on the `squall_command`
/// notification channel: a history removed (`H EPOCH OFFSET CHANNEL`, which every node acts on,
/// the sender too) and the server API's commands (`D NODE CODE USER REASON` and
/// `U NODE CHANNEL USER`, user and reason in hex, which the sending node has already carried
/// out itself).
///
/// Contracts: like every notification, a command reaches the nodes listening when it is sent,
/// once each, and is never stored; its payload stays far below PostgreSQL's 8000 bytes (a user
/// id is at most 256 bytes, a reason 123).
enum PostgresCommands {
    /// The notification channel.
    static let channel = "squall_command"

    /// Deletes `channel`'s messages under its row's lock (an append waits), keeping its position,
    /// and notifies every node; no row for a channel the database does not hold.
    static func removeHistory(_ channel: ChannelName) -> PostgresQuery {
        let name = channel.rawValue
        return """
            WITH kept AS (SELECT epoch, last_offset FROM squall_channels WHERE name = \(name) FOR UPDATE),
            removed AS (DELETE FROM squall_messages WHERE channel = \(name) AND EXISTS (SELECT 1 FROM kept))
            SELECT epoch, last_offset, pg_notify('squall_command', 'H ' || epoch || ' ' || last_offset || ' ' || \(name)) FROM kept
            """
    }

    /// The notification that carries `command` from `node`.
    static func send(_ command: NodeCommand, from node: UUID) -> PostgresQuery {
        let payload = payload(command, from: node)
        return "SELECT pg_notify('squall_command', \(payload))"
    }

    /// `command` from `node` as a notification's payload.
    static func payload(_ command: NodeCommand, from node: UUID) -> String {
        switch command {
        case .disconnect(let user, let disconnect):
            "D \(node.uuidString) \(disconnect.code) \(hex(user)) \(hex(disconnect.reason))"
        case .unsubscribe(let user, let channel):
            "U \(node.uuidString) \(channel.rawValue) \(hex(user))"
        }
    }

    /// What a notification says: a history removal, or another node's command; `nil` for this
    /// node's own command and anything malformed.
    enum Notice {
        case historyRemoved(ChannelName, StreamPosition)
        case command(NodeCommand)
    }

    static func notice(_ payload: String, node: UUID) -> Notice? {
        let parts = payload.split(separator: " ", omittingEmptySubsequences: false)
        switch parts.first {
        case "H" where parts.count == 4:
            guard let offset = UInt64(parts[2]), let channel = try? ChannelName(String(parts[3])) else { return nil }
            return .historyRemoved(channel, StreamPosition(epoch: String(parts[1]), offset: offset))
        case "D" where parts.count == 5:
            guard isOther(parts[1], than: node), let code = UInt16(parts[2]), let user = PostgresQueries.user(hex: parts[3]) else {
                return nil
            }
            let reason = parts[4].isEmpty ? "" : PostgresQueries.user(hex: parts[4]) ?? ""
            return .command(.disconnect(user: user, Disconnect(code: code, reason: reason)))
        case "U" where parts.count == 4:
            guard isOther(parts[1], than: node), let channel = try? ChannelName(String(parts[2])),
                let user = PostgresQueries.user(hex: parts[3])
            else { return nil }
            return .command(.unsubscribe(user: user, channel: channel))
        default:
            return nil
        }
    }

    /// Whether `text` names a node, and not `node`.
    private static func isOther(_ text: Substring, than node: UUID) -> Bool {
        UUID(uuidString: String(text)).map { $0 != node } ?? false
    }

    private static func hex(_ text: String) -> String {
        text.utf8.map { String(format: "%02x", $0) }.joined()
    }
}
