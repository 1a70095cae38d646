// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Testing

@testable import SquallPostgres

/// One connection to the database, given up when a query goes unanswered.
@Suite("PostgreSQL link", needsDatabase)
struct PostgresLinkTests {
    @Test func aConnectionThatAnswersNothingInTimeIsGivenUpAndTheNextQueryConnectsAgain() async throws {
        // Before: a query on a connection whose database stopped answering held the link — and
        // with it every channel waiting to open on the node — until TCP gave up, minutes later.
        let url = try #require(databaseURL)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let link = PostgresLink(
            loop: group.next(), configuration: try PostgresAddress(url).configuration(), logger: Logger(label: "test"), queryTimeout: .seconds(1),
            statementTimeout: nil)
        let started = ContinuousClock.now
        // A query that answers in 60 s stands for one the database never answers.
        await #expect(throws: (any Error).self) { try await link.query("SELECT pg_sleep(60)").get() }
        #expect(ContinuousClock.now - started < .seconds(10))
        let answer = try await link.query("SELECT 42").get().rows.first?.decode(Int.self)
        #expect(answer == 42, "the next query connects again")
        _ = try? await link.close().get()
        try await group.shutdownGracefully()
    }

    @Test func aLongQueueThatKeepsBeingAnsweredIsNeverCut() async throws {
        // The bound is on silence, not on a query's wait in line: a node reading every open
        // channel after an outage queues many reads on one connection.
        let url = try #require(databaseURL)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let link = PostgresLink(
            loop: group.next(), configuration: try PostgresAddress(url).configuration(), logger: Logger(label: "test"), queryTimeout: .seconds(1))
        let queries = (0..<8).map { _ in link.query("SELECT pg_sleep(0.4)") }
        for query in queries { _ = try await query.get() }  // 3.2 s in line for the last, none unanswered for 1 s
        _ = try? await link.close().get()
        try await group.shutdownGracefully()
    }

    @Test func theServerCancelsAStatementThatRunsPastTheStatementTimeout() async throws {
        // A query given up on must not go on running on the server, holding its locks: the
        // server itself cancels it (SQLSTATE 57014), whatever the client does.
        let url = try #require(databaseURL)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let link = PostgresLink(
            loop: group.next(), configuration: try PostgresAddress(url).configuration(), logger: Logger(label: "test"), queryTimeout: .seconds(30),
            statementTimeout: .seconds(1))
        let started = ContinuousClock.now
        let error = await #expect(throws: PSQLError.self) { try await link.query("SELECT pg_sleep(61)").get() }
        #expect(error?.serverInfo?[.sqlState] == "57014", "canceled by statement_timeout")
        #expect(ContinuousClock.now - started < .seconds(10))
        _ = try? await link.close().get()
        try await group.shutdownGracefully()
    }
}
