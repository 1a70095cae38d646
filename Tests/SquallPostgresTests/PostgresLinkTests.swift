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
    @Test func aQueryTheDatabaseDoesNotAnswerInTimeFreesTheLinkForTheNext() async throws {
        // Before: a query on a connection whose database stopped answering held the link — and
        // with it every channel waiting to open on the node — until TCP gave up, minutes later.
        let url = try #require(databaseURL)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let link = PostgresLink(
            loop: group.next(), configuration: try PostgresAddress(url).configuration(), logger: Logger(label: "test"), queryTimeout: .seconds(1))
        let started = ContinuousClock.now
        // A query that answers in 60 s stands for one the database never answers.
        await #expect(throws: (any Error).self) { try await link.query("SELECT pg_sleep(60)").get() }
        #expect(ContinuousClock.now - started < .seconds(10))
        let answer = try await link.query("SELECT 42").get().rows.first?.decode(Int.self)
        #expect(answer == 42, "the next query connects again")
        _ = try? await link.close().get()
        try await group.shutdownGracefully()
    }
}
