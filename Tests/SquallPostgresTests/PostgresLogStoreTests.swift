// SPDX-License-Identifier: Apache-2.0

import Foundation
import SquallCore
import SquallPostgres
import Synchronization
import Testing

/// A subscriber that keeps what it receives, in order.
private final class Recorder: Subscriber {
    let messages = Mutex<[Message]>([])
    let events = Mutex<[PresenceChange]>([])
    let lost = Mutex(0)
    func receive(_ message: Message) { messages.withLock { $0.append(message) } }
    func receive(_ event: PresenceEvent) { events.withLock { $0.append(event.change) } }
    func lost(_ channel: ChannelName, current: StreamPosition) { lost.withLock { $0 += 1 } }
    var texts: [String] { messages.withLock { $0.map { $0.payload.text ?? "" } } }
    var offsets: [UInt64] { messages.withLock { $0.map(\.offset) } }
}

/// Two or three hubs on one real PostgreSQL database, as nodes of one system. Each test uses
/// channels of its own, so tests share the database without seeing each other's messages.
@Suite("PostgreSQL log store", needsDatabase)
struct PostgresLogStoreTests {
    let room: ChannelName

    init() throws {
        room = try ChannelName("room-\(UUID().uuidString.prefix(8))")
    }

    private func node(retention: Retention = Retention(), database: String? = nil) async throws -> (Hub, PostgresLogStore) {
        let store = try await PostgresLogStore(address: PostgresAddress(databaseURL(of: database)), retention: retention)
        return (Hub(retention: retention, shared: store), store)
    }

    private func member() -> PresenceMember {
        PresenceMember(id: UUID(), info: nil, transport: "test")
    }

    /// Rows written straight into the tables, with no notification: as by a node whose
    /// notification was lost. `payload` is SQL, of `n` the offset; the channel's row is made if
    /// it has none, and its last offset becomes the range's end.
    private func appendSilently(
        offsets: ClosedRange<Int>,
        epoch: String,
        payload: String = "convert_to('m' || n, 'UTF8')",
        binary: Bool = false
    ) async throws {
        try await psql(
            """
            INSERT INTO squall_channels (name, epoch, last_offset) VALUES ('\(room.rawValue)', '\(epoch)', 0) ON CONFLICT (name) DO NOTHING;
            INSERT INTO squall_messages (channel, "offset", epoch, id, time, is_binary, payload)
                SELECT '\(room.rawValue)', n, '\(epoch)', gen_random_uuid(), extract(epoch FROM now()), \(binary), \(payload)
                FROM generate_series(\(offsets.lowerBound), \(offsets.upperBound)) AS n;
            UPDATE squall_channels SET last_offset = \(offsets.upperBound) WHERE name = '\(room.rawValue)';
            """
        )
    }

    /// How many rows `table` holds where `condition`.
    private func count(_ table: String, where condition: String, in database: String? = nil) async throws -> Int {
        Int(try await psql("SELECT count(*) FROM \(table) WHERE \(condition)", in: database)) ?? -1
    }

    /// Waits until `condition` holds, for at most 10 s; records a failure if it never does.
    private func eventually(_ what: String, sourceLocation: SourceLocation = #_sourceLocation, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while try await !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("not within 10 s: \(what)", sourceLocation: sourceLocation)
                return
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    @Test func messagesPublishedOnTwoNodesReachSubscribersOnBothInOneOrder() async throws {
        let (a, storeA) = try await node()
        let (b, storeB) = try await node()
        let onA = Recorder()
        let onB = Recorder()
        try await a.subscribe(onA, to: room, member: member())
        try await b.subscribe(onB, to: room, member: member())
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (name, hub) in [("a", a), ("b", b)] {
                group.addTask {
                    for n in 0..<100 { try await hub.publish(.text("\(name)\(n)"), to: room) }
                }
            }
            try await group.waitForAll()
        }
        try await eventually("200 on each node") { onA.messages.withLock(\.count) == 200 && onB.messages.withLock(\.count) == 200 }
        #expect(onA.offsets == Array(1...200))
        #expect(onA.texts == onB.texts)
        #expect(Set(onA.texts).count == 200)
        #expect(try await a.history(room).position == (try await b.history(room).position))
        await storeA.close()
        await storeB.close()
    }

    @Test func aNodeStartedAgainKeepsTheEpochOffsetsAndHistory() async throws {
        let (first, store) = try await node()
        let published = try await first.publish(.text("one"), to: room)
        try await first.publish(.binary([0, 255]), to: room)
        await store.close()

        let (again, storeAgain) = try await node()
        let history = try await again.history(room)
        #expect(history.position.epoch == published.position.epoch)
        #expect(history.messages.map(\.offset) == [1, 2])
        #expect(history.messages.first?.payload == .text("one"))
        #expect(history.messages.last?.payload == .binary([0, 255]))
        let next = try await again.publish(.text("three"), to: room)
        #expect(next.position == StreamPosition(epoch: published.position.epoch, offset: 3))
        await storeAgain.close()
    }

    @Test func aRetryWithTheSameKeyOnAnotherNodeAppendsOnceAndAReusedKeyIsRefused() async throws {
        let (a, storeA) = try await node()
        let (b, storeB) = try await node()
        let key = try IdempotencyKey("order-\(UUID().uuidString)")
        let first = try await a.publish(.text("pay"), to: room, idempotencyKey: key)
        let retry = try await b.publish(.text("pay"), to: room, idempotencyKey: key)
        #expect(retry.position == first.position)
        await #expect(throws: PublishError.self) { try await b.publish(.text("pay twice as much"), to: room, idempotencyKey: key) }
        let other = try await b.publish(.text("next"), to: room)
        #expect(other.offset == first.offset + 1)
        try await eventually("A has both") { try await a.history(room).messages.count == 2 }
        #expect(try await a.history(room).messages.map { $0.payload.text } == ["pay", "next"])
        await storeA.close()
        await storeB.close()
    }

    @Test func aNodeReadsWhatItMissedWhenToldToResynchronize() async throws {
        let (a, storeA) = try await node()
        let onA = Recorder()
        try await a.subscribe(onA, to: room, member: member())
        // A hears another node's publish: its listener is up (and past the resynchronize()
        // every new listener does).
        let (other, otherStore) = try await node()
        let first = try await other.publish(.text("m1"), to: room)
        try await eventually("A heard m1") { onA.messages.withLock(\.count) == 1 }
        try await appendSilently(offsets: 2...4, epoch: first.position.epoch)
        try await Task.sleep(for: .milliseconds(200))
        #expect(onA.messages.withLock(\.count) == 1, "nothing told A")
        a.resynchronize()
        try await eventually("A read 2-4") { onA.messages.withLock(\.count) == 4 }
        #expect(onA.texts == ["m1", "m2", "m3", "m4"])
        #expect(onA.offsets == [1, 2, 3, 4])
        await otherStore.close()
        await storeA.close()
    }

    @Test func aCatchUpLongerThanOneReadsByteBoundReadsOnToTheEnd() async throws {
        let (a, storeA) = try await node()
        let onA = Recorder()
        try await a.subscribe(onA, to: room, member: member())
        // 10 MiB behind: more than one read's 4 MiB (PostgresLogStore.maxReadBytes), from before
        // the channel's first message.
        try await appendSilently(offsets: 1...10, epoch: "silent01", payload: "convert_to(repeat('x', 1048576), 'UTF8')", binary: true)
        a.resynchronize()
        try await eventually("all ten read") { onA.messages.withLock(\.count) == 10 }
        #expect(onA.offsets == Array(1...10))
        #expect(onA.lost.withLock { $0 } == 0)
        await storeA.close()
    }

    @Test func aNodeThatFellBehindWhatTheDatabaseRetainsTellsItsSubscribers() async throws {
        let (a, storeA) = try await node()
        let first = try await a.publish(.text("m1"), to: room)
        let onA = Recorder()
        try await a.subscribe(onA, to: room, member: member())
        // Offsets 2–4 published and already trimmed by other nodes; 5–7 retained.
        try await appendSilently(offsets: 5...7, epoch: first.position.epoch)
        a.resynchronize()
        try await eventually("told") { onA.lost.withLock { $0 } == 1 }
        #expect(onA.messages.withLock(\.count) == 0, "not handed 5–7 as if nothing came before")
        #expect(try await a.history(room).messages.map(\.offset) == [5, 6, 7])
        #expect(try await a.history(room, since: StreamPosition(epoch: first.position.epoch, offset: 2)).recovered == false)
        await storeA.close()
    }

    @Test func aPositionAnotherNodeGaveOutResumesOnANodeThatHasNotHeardOfItYet() async throws {
        let (b, storeB) = try await node()
        _ = try await b.history(room)  // B has the channel open, and hears nothing of rows written behind it
        try await appendSilently(offsets: 1...3, epoch: "silent02")
        // A client that read up to 2 on another node polls B, which knows of nothing yet.
        let page = try await b.poll(room, since: StreamPosition(epoch: "silent02", offset: 2), limit: 10, wait: .seconds(5))
        #expect(page.recovered)
        #expect(page.messages.map { $0.payload.text } == ["m3"])
        // A subscriber resuming there gets what follows its position, nothing before.
        let late = Recorder()
        let subscription = try await b.subscribe(late, to: room, from: StreamPosition(epoch: "silent02", offset: 3), member: member())
        #expect(subscription.recovered == true)
        try await b.publish(.text("m4"), to: room)
        try await eventually("m4 arrives") { late.messages.withLock(\.count) == 1 }
        #expect(late.texts == ["m4"])
        await storeB.close()
    }

    @Test func aPublishFromTheApplicationsTransactionIsDeliveredIfAndOnlyIfItCommits() async throws {
        let (a, storeA) = try await node()
        let (b, storeB) = try await node()
        let onA = Recorder()
        let onB = Recorder()
        try await a.subscribe(onA, to: room, member: member())
        try await b.subscribe(onB, to: room, member: member())
        let first = try await a.publish(.text("from a node"), to: room)
        // The application's own transaction: its other work, then the publish, then the outcome.
        try await psql(
            """
            BEGIN; CREATE TEMP TABLE orders (id int); INSERT INTO orders VALUES (1);
            SELECT squall_publish('\(room.rawValue)', 'rolled back'); ROLLBACK;
            BEGIN; SELECT squall_publish('\(room.rawValue)', 'order 1 shipped', 'order-1'); COMMIT;
            """)
        // A retry of the committed one with its key publishes nothing new.
        _ = try await psql("SELECT squall_publish('\(room.rawValue)', 'order 1 shipped', 'order-1')")
        try await psql("SELECT squall_publish('\(room.rawValue)', '\\x00ff'::bytea)")
        _ = try await b.publish(.text("from b, after"), to: room)
        for recorder in [onA, onB] {
            try await eventually("every node delivers the committed ones") { recorder.messages.withLock { $0.count } == 4 }
            #expect(recorder.texts.prefix(2) == ["from a node", "order 1 shipped"])
            let binary = recorder.messages.withLock { $0[2].payload }
            #expect(binary.kind == .binary && Array(binary.bytes.readableBytesView) == [0x00, 0xFF])
            #expect(recorder.offsets == [first.offset, first.offset + 1, first.offset + 2, first.offset + 3], "in offset order with the nodes' publishes")
        }
        #expect(try await count("squall_messages", where: "channel = '\(room.rawValue)' AND payload = convert_to('rolled back', 'UTF8')") == 0)
        await #expect(throws: PsqlFailed.self) { _ = try await psql("SELECT squall_publish('not a channel!', 'x')") }
        await storeA.close()
        await storeB.close()
    }

    @Test func presenceSpansNodesWithJoinAndLeaveEventsAndTheMembersUser() async throws {
        let (a, storeA) = try await node()
        let (b, storeB) = try await node()
        let watcher = Recorder()
        try await b.subscribe(watcher, to: room, member: member(), presenceEvents: true)
        // A user id with spaces and more than ASCII: it travels whole between nodes.
        let alice = PresenceMember(id: UUID(), info: .name("alice"), transport: "test", user: "alice in wonderland ✓")
        let onA = Recorder()
        try await a.subscribe(onA, to: room, member: alice)
        try await eventually("B lists alice") { b.presence(room).contains(alice) }
        #expect(b.presence(room).count == 2)
        try await eventually("A lists B's member") { a.presence(room).count == 2 }
        // Heard at the end of B's presence turn (a join and leave within one would be merged away).
        try await eventually("B's watcher heard the join") { watcher.events.withLock { $0 }.contains(.join(room, alice)) }
        a.unsubscribe(onA, from: room)
        try await eventually("alice left B") { !b.presence(room).contains(alice) }
        try await eventually("B's watcher heard the leave") { watcher.events.withLock { $0 }.contains(.leave(room, alice)) }
        await storeA.close()
        await storeB.close()
    }

    @Test func aPositionTheDatabaseNeverHadIsToldOnceTheNodeHasCaughtUp() async throws {
        let (a, storeA) = try await node()
        let first = try await a.publish(.text("m1"), to: room)
        let dreamer = Recorder()
        let subscription = try await a.subscribe(dreamer, to: room, from: StreamPosition(epoch: first.position.epoch, offset: 99), member: member())
        #expect(subscription.recovered == true, "it may be another node's, until the node has caught up")
        try await eventually("the dreamer is told") { dreamer.lost.withLock { $0 } == 1 }
        #expect(a.presence(room).isEmpty)
        // A poll from there is told too, once the node has read the database.
        let page = try await a.poll(room, since: StreamPosition(epoch: first.position.epoch, offset: 99), limit: 10, wait: .seconds(20))
        #expect(page.recovered == false)
        #expect(page.position == first.position)
        await storeA.close()
    }

    @Test func readingChannelsNobodyPublishedToLeavesNoRow() async throws {
        let (a, storeA) = try await node()
        let prefix = "curious-\(UUID().uuidString.prefix(8))"
        for index in 0..<100 {
            let channel = try ChannelName("\(prefix)-\(index)")
            _ = try await a.history(channel)
            _ = try await a.poll(channel, since: nil, limit: 10, wait: .zero)
            try await a.subscribe(Recorder(), to: channel, member: member())
        }
        #expect(try await count("squall_channels", where: "name LIKE '\(prefix)-%'") == 0)
        try await a.publish(.text("now"), to: try ChannelName("\(prefix)-0"))
        #expect(try await count("squall_channels", where: "name LIKE '\(prefix)-%'") == 1)
        await storeA.close()
    }

    @Test func aPositionFromBeforeTheFirstMessageResumesOnAnotherNode() async throws {
        let (a, storeA) = try await node()
        let (b, storeB) = try await node()
        let early = try await a.history(room).position
        #expect(early.unpublishedAt != nil)
        try await b.publish(.text("first"), to: room)
        let resumed = try await a.poll(room, since: early, limit: 10, wait: .seconds(5))
        #expect(resumed.recovered && resumed.messages.map { $0.payload.text } == ["first"])
        await storeA.close()
        await storeB.close()
    }

    @Test func theJanitorDeletesExpiredMessagesAndForgetsChannelsPastTheirMetaTTL() async throws {
        // A database of its own: the janitor cleans whole databases, and other tests' rows are
        // not 2 s old for nothing. An age of 2 s: it runs every second.
        try await withDatabaseOfItsOwn("janitor") { database in
            let retention = Retention(maxAge: .seconds(2), metaTTL: .seconds(4))
            let (a, storeA) = try await node(retention: retention, database: database)
            let gone = try await a.publish(.text("old"), to: room)
            try await eventually("the message deleted by age") {
                try await count("squall_messages", where: "channel = '\(room.rawValue)'", in: database) == 0
            }
            #expect(try await count("squall_channels", where: "name = '\(room.rawValue)'", in: database) == 1, "the position outlives the message")
            try await eventually("the channel forgotten") { try await count("squall_channels", where: "name = '\(room.rawValue)'", in: database) == 0 }
            let again = try await a.publish(.text("new"), to: room)
            #expect(again.position.epoch != gone.position.epoch && again.offset == 1, "a new life, in a new epoch")
            await storeA.close()
        }
    }

    @Test func whileTheDatabaseCannotTakePresenceNoMembersStateIsDropped() async throws {
        // Before: past 65,536 changes waiting, the oldest half was dropped — real members'
        // joins with them. Now what waits is each member's latest state. A database of its
        // own: the lock below would hold up the suites running beside this one.
        try await withDatabaseOfItsOwn("lagging") { database in
            let (a, storeA) = try await node(database: database)  // a hub each: its heartbeats keep its members live
            let (b, storeB) = try await node(database: database)
            let alice = PresenceMember(id: UUID(), info: .name("alice"), transport: "test")
            // Another session holds squall_presence: A's writes wait, as on a database that lags.
            let holder = try psqlStart("BEGIN; LOCK TABLE squall_presence IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(4); COMMIT;", in: database)
            try await Task.sleep(for: .milliseconds(500))
            // A first change, which the writer takes and waits with: alice's then waits in the
            // queue, with everything after her.
            storeA.announce(.join(room, PresenceMember(id: UUID(), info: nil, transport: "test")))
            try await Task.sleep(for: .milliseconds(200))
            storeA.announce(.join(room, alice))
            for index in 0..<70_000 {
                storeA.announce(.join(try ChannelName("churn-\(index % 70)"), PresenceMember(id: UUID(), info: nil, transport: "test")))
            }
            while holder.isRunning { try await Task.sleep(for: .milliseconds(50)) }  // no thread held waiting
            try await eventually("B sees alice once A's writes go through") {
                (try? await storeB.members(room))?.contains { $0.member == alice } == true
            }
            withExtendedLifetime((a, b)) {}
            await storeA.close()
            await storeB.close()
        }
    }

    @Test func aBadAddressIsRefusedWithAClearError() async {
        #expect(throws: StoreError.self) { try PostgresAddress("mysql://x@y/z") }
        #expect(throws: StoreError.self) { try PostgresAddress("postgres://127.0.0.1/db") }
        #expect(throws: StoreError.self) { try PostgresAddress("postgres://u@127.0.0.1/db?sslmode=maybe") }
        let error = await #expect(throws: StoreError.self) {
            try await PostgresLogStore(address: PostgresAddress("postgres://nobody@127.0.0.1:1/none"))
        }
        #expect(error?.description.contains("PostgreSQL could not") == true)
    }
}
