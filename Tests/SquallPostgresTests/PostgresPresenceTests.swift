// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import SquallCore
import Testing

@testable import SquallPostgres

/// What a node's presence queue holds while the database cannot take its writes.
@Suite("PostgreSQL presence queue", needsDatabase)
struct PostgresPresenceTests {
    @Test func membersWhoComeAndGoWhileTheDatabaseIsAwayLeaveNothingWaiting() async throws {
        // Before: a leave replaced its member's unwritten join, so every member that came and
        // went while writes waited stayed queued: the queue grew with churn, not with members.
        try await withDatabaseOfItsOwn("presence") { database in
            let address = try PostgresAddress(databaseURL(of: database))
            await (try await PostgresLogStore(address: address)).close()  // the tables, as a node makes them
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let link = PostgresLink(loop: group.next(), configuration: try address.configuration(), logger: Logger(label: "test"))
            let presence = PostgresPresence(node: UUID(), link: link, logger: Logger(label: "test"))
            let room = try ChannelName("room")
            // Another session holds squall_presence: this node's writes wait.
            let holder = try psqlStart("BEGIN; LOCK TABLE squall_presence IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;", in: database)
            while try await link.query(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'squall_presence' AND l.granted AND l.mode = 'AccessExclusiveLock'"
            ).get().rows.first?.decode(Int.self) != 1 {
                try await Task.sleep(for: .milliseconds(20))
            }
            let alice = PresenceMember(id: UUID(), info: nil, transport: "test")
            presence.announce(.join(room, alice))
            while presence.waiting > 0 { try await Task.sleep(for: .milliseconds(10)) }  // her write is under way, waiting for the lock
            let bob = PresenceMember(id: UUID(), info: nil, transport: "test")
            presence.announce(.join(room, bob))
            for _ in 0..<10_000 {
                let passing = PresenceMember(id: UUID(), info: nil, transport: "test")
                presence.announce(.join(room, passing))
                presence.announce(.leave(room, passing))
            }
            #expect(presence.waiting == 1, "only bob's join waits; \(presence.waiting) states do")
            presence.announce(.leave(room, alice))  // her join was sent: her leave must be written
            #expect(presence.waiting == 2)
            while holder.isRunning { try await Task.sleep(for: .milliseconds(50)) }
            let deadline = ContinuousClock.now + .seconds(10)
            while presence.waiting > 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            let rows = try await link.query("SELECT client FROM squall_presence").get().rows.map { try $0.decode(UUID.self) }
            #expect(rows == [bob.id], "bob is recorded, alice's row is gone, no passer-by left one")
            presence.close()
            _ = try? await link.close().get()
            try await group.shutdownGracefully()
        }
    }

    @Test func membersWhoComeAndGoWhileTheDatabaseCannotBeReachedLeaveNothingWaiting() async throws {
        // Before: each retry marked up to 1,000 joins it never sent as possibly recorded, so
        // their leaves stayed queued: the queue grew with churn for as long as the outage.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let nowhere = try PostgresAddress("postgres://squall@127.0.0.1:1/none")
        let link = PostgresLink(loop: group.next(), configuration: try nowhere.configuration(), logger: Logger(label: "test"))
        let presence = PostgresPresence(node: UUID(), link: link, logger: Logger(label: "test"))
        let room = try ChannelName("room")
        for round in 0..<3 {
            for _ in 0..<500 {
                let passing = PresenceMember(id: UUID(), info: nil, transport: "test")
                presence.announce(.join(room, passing))
                try await Task.sleep(for: .milliseconds(1))  // a write attempt may take the join meanwhile
                presence.announce(.leave(room, passing))
            }
            try await Task.sleep(for: .milliseconds(1200))  // a retry, which fails to connect
            #expect(presence.waiting == 0, "round \(round): \(presence.waiting) states wait for a database that was never reached")
        }
        presence.close()
        _ = try? await link.close().get()
        try await group.shutdownGracefully()
    }
}
