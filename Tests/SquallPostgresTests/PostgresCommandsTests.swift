// SPDX-License-Identifier: Apache-2.0

import Foundation
import SquallCore
import Testing

@testable import SquallPostgres

/// What the `squall_command` notifications carry between nodes, read back without the database.
@Suite struct PostgresCommandsTests {
    let node = UUID()

    @Test func aCommandFromAnotherNodeComesBackAsItWasSent() throws {
        let other = UUID()
        let commands: [NodeCommand] = [
            .disconnect(user: "alice ✓ with spaces", Disconnect(code: 4600, reason: "banned: spam")),
            .disconnect(user: "bob", Disconnect(code: 4000, reason: "")),
            .unsubscribe(user: "carol", channel: try ChannelName("chat:lobby")),
        ]
        for command in commands {
            guard case .command(let read) = PostgresCommands.notice(PostgresCommands.payload(command, from: other), node: node) else {
                Issue.record("\(command) did not come back")
                continue
            }
            #expect(read == command)
        }
    }

    @Test func aNodeIgnoresItsOwnCommandsButNotAHistoryRemoval() throws {
        let own = PostgresCommands.payload(.unsubscribe(user: "dave", channel: try ChannelName("room")), from: node)
        #expect(PostgresCommands.notice(own, node: node) == nil, "the sender acted already")
        guard case .historyRemoved(let channel, let position) = PostgresCommands.notice("H k3x9q2ab 41 room", node: node) else {
            Issue.record("no history removal")
            return
        }
        #expect(channel.rawValue == "room")
        #expect(position == StreamPosition(epoch: "k3x9q2ab", offset: 41))
    }

    @Test func aMalformedNotificationIsIgnoredNeverATrap() {
        for payload in ["", "D", "D x 4000 61 62", "D \(UUID()) 99999 61 62", "D \(UUID()) 4000 zz 62", "U \(UUID()) bad name 61", "H e x room", "X 1 2 3"] {
            #expect(PostgresCommands.notice(payload, node: node) == nil, "\(payload)")
        }
    }
}
