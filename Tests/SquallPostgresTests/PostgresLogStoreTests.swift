import Foundation
import SquallCore
import SquallPostgres
import Synchronization
import Testing

/// The database these tests use: `SQUALL_TEST_POSTGRES`, which the test command sets after
/// `scripts/postgres` starts one on 127.0.0.1.
private let databaseURL = ProcessInfo.processInfo.environment["SQUALL_TEST_POSTGRES"]

/// A subscriber that keeps what it receives, in order.
private final class Recorder: Subscriber {
    let messages = Mutex<[Message]>([])
    let events = Mutex<[PresenceEvent]>([])
    let lost = Mutex(0)
    func receive(_ message: Message) { messages.withLock { $0.append(message) } }
    func receive(_ event: PresenceEvent) { events.withLock { $0.append(event) } }
    func lost(_ channel: ChannelName, current: StreamPosition) { lost.withLock { $0 += 1 } }
    var texts: [String] { messages.withLock { $0.map { $0.payload.text ?? "" } } }
    var offsets: [UInt64] { messages.withLock { $0.map(\.offset) } }
}

/// Two or three hubs on one real PostgreSQL database, as nodes of one system. Each test uses
/// channels of its own, so tests share the database without seeing each other's messages.
@Suite(
    "PostgreSQL log store",
    .enabled(if: databaseURL != nil, "needs a database: SQUALL_TEST_POSTGRES=postgres://… (scripts/postgres starts one)")
)
struct PostgresLogStoreTests {
    let room: ChannelName

    init() throws {
        room = try ChannelName("room-\(UUID().uuidString.prefix(8))")
    }

    private func node() throws -> (Hub, PostgresLogStore) {
        let store = try PostgresLogStore(address: PostgresAddress(databaseURL ?? ""))
        return (Hub(shared: store), store)
    }

    private func member() -> PresenceMember {
        PresenceMember(id: UUID(), info: nil, transport: "test")
    }

    /// Rows written straight into the tables, with no notification: as by a node whose
    /// notification was lost. `payload` is SQL, of `n` the offset; the channel's last offset
    /// becomes the range's end.
    private func appendSilently(
        offsets: ClosedRange<Int>,
        epoch: String,
        payload: String = "convert_to('m' || n, 'UTF8')",
        binary: Bool = false
    ) throws {
        try psql(
            """
            INSERT INTO squall_messages (channel, "offset", epoch, id, time, is_binary, payload)
                SELECT '\(room.rawValue)', n, '\(epoch)', gen_random_uuid(), extract(epoch FROM now()), \(binary), \(payload)
                FROM generate_series(\(offsets.lowerBound), \(offsets.upperBound)) AS n;
            UPDATE squall_channels SET last_offset = \(offsets.upperBound) WHERE name = '\(room.rawValue)';
            """
        )
    }

    /// Runs SQL with Debian's psql, as an operator would.
    private func psql(_ sql: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        process.arguments = ["-q", "-v", "ON_ERROR_STOP=1", databaseURL ?? "", "-c", sql]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    /// Waits until `condition` holds, for at most 10 s.
    private func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<1000 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
    }

    @Test func messagesPublishedOnTwoNodesReachSubscribersOnBothInOneOrder() async throws {
        let (a, storeA) = try node()
        let (b, storeB) = try node()
        let onA = Recorder()
        let onB = Recorder()
        a.subscribe(onA, to: room, member: member())
        b.subscribe(onB, to: room, member: member())
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (name, hub) in [("a", a), ("b", b)] {
                group.addTask {
                    for n in 0..<100 { try await hub.publish(.text("\(name)\(n)"), to: room) }
                }
            }
            try await group.waitForAll()
        }
        try await eventually { onA.messages.withLock(\.count) == 200 && onB.messages.withLock(\.count) == 200 }
        #expect(onA.offsets == Array(1...200))
        #expect(onA.texts == onB.texts)
        #expect(Set(onA.texts).count == 200)
        #expect(a.history(room).position == b.history(room).position)
        await storeA.close()
        await storeB.close()
    }

    @Test func aNodeStartedAgainKeepsTheEpochOffsetsAndHistory() async throws {
        let (first, store) = try node()
        let published = try await first.publish(.text("one"), to: room)
        try await first.publish(.binary([0, 255]), to: room)
        await store.close()

        let (again, storeAgain) = try node()
        let history = again.history(room)
        #expect(history.position.epoch == published.position.epoch)
        #expect(history.messages.map(\.offset) == [1, 2])
        #expect(history.messages.first?.payload == .text("one"))
        #expect(history.messages.last?.payload == .binary([0, 255]))
        let next = try await again.publish(.text("three"), to: room)
        #expect(next.position == StreamPosition(epoch: published.position.epoch, offset: 3))
        await storeAgain.close()
    }

    @Test func aRetryWithTheSameKeyOnAnotherNodeAppendsOnce() async throws {
        let (a, storeA) = try node()
        let (b, storeB) = try node()
        let key = try IdempotencyKey("order-\(UUID().uuidString)")
        let first = try await a.publish(.text("pay"), to: room, idempotencyKey: key)
        let retry = try await b.publish(.text("pay"), to: room, idempotencyKey: key)
        #expect(retry.position == first.position)
        let other = try await b.publish(.text("next"), to: room)
        #expect(other.offset == first.offset + 1)
        try await eventually { a.history(room).messages.count == 2 }
        #expect(a.history(room).messages.map { $0.payload.text } == ["pay", "next"])
        await storeA.close()
        await storeB.close()
    }

    @Test func aNodeReadsWhatItMissedWhenToldToResynchronize() async throws {
        let (a, storeA) = try node()
        let onA = Recorder()
        a.subscribe(onA, to: room, member: member())
        let epoch = a.history(room).position.epoch
        // A hears another node's publish: its listener is up (and past the resynchronize()
        // every new listener does).
        let (other, otherStore) = try node()
        try await other.publish(.text("m1"), to: room)
        try await eventually { onA.messages.withLock(\.count) == 1 }
        try appendSilently(offsets: 2...4, epoch: epoch)
        try await Task.sleep(for: .milliseconds(200))
        #expect(onA.messages.withLock(\.count) == 1, "nothing told A")
        a.resynchronize()
        try await eventually { onA.messages.withLock(\.count) == 4 }
        #expect(onA.texts == ["m1", "m2", "m3", "m4"])
        #expect(onA.offsets == [1, 2, 3, 4])
        await otherStore.close()
        await storeA.close()
    }

    @Test func aCatchUpLongerThanOneReadsByteBoundReadsOnToTheEnd() async throws {
        let (a, storeA) = try node()
        let onA = Recorder()
        a.subscribe(onA, to: room, member: member())
        let epoch = a.history(room).position.epoch
        // 10 MiB behind: more than one read's 4 MiB (PostgresLogStore.maxReadBytes).
        try appendSilently(offsets: 1...10, epoch: epoch, payload: "convert_to(repeat('x', 1048576), 'UTF8')", binary: true)
        a.resynchronize()
        try await eventually { onA.messages.withLock(\.count) == 10 }
        #expect(onA.offsets == Array(1...10))
        #expect(onA.lost.withLock { $0 } == 0)
        await storeA.close()
    }

    @Test func aNodeThatFellBehindWhatTheDatabaseRetainsTellsItsSubscribers() async throws {
        let (a, storeA) = try node()
        let onA = Recorder()
        a.subscribe(onA, to: room, member: member())
        let epoch = a.history(room).position.epoch
        // Offsets 1–4 published and already trimmed by other nodes; 5–7 retained.
        try appendSilently(offsets: 5...7, epoch: epoch)
        a.resynchronize()
        try await eventually { onA.lost.withLock { $0 } == 1 }
        #expect(onA.lost.withLock { $0 } == 1, "told it may have missed messages")
        #expect(onA.messages.withLock(\.count) == 0, "not handed 5–7 as if nothing came before")
        let history = a.history(room)
        #expect(history.messages.map(\.offset) == [5, 6, 7])
        #expect(a.history(room, since: StreamPosition(epoch: epoch, offset: 2)).recovered == false)
        await storeA.close()
    }

    @Test func aPositionAnotherNodeGaveOutResumesOnANodeThatHasNotHeardOfItYet() async throws {
        let (b, storeB) = try node()
        let epoch = b.history(room).position.epoch
        try appendSilently(offsets: 1...3, epoch: epoch)
        // A client that read up to 2 on another node polls B, which knows of nothing yet.
        let page = await b.poll(room, since: StreamPosition(epoch: epoch, offset: 2), limit: 10, wait: .seconds(5))
        #expect(page.recovered)
        #expect(page.messages.map { $0.payload.text } == ["m3"])
        // A subscriber resuming there gets what follows its position, nothing before.
        let late = Recorder()
        let subscription = b.subscribe(late, to: room, from: StreamPosition(epoch: epoch, offset: 3), member: member())
        #expect(subscription.recovered == true)
        try await b.publish(.text("m4"), to: room)
        try await eventually { late.messages.withLock(\.count) == 1 }
        #expect(late.texts == ["m4"])
        await storeB.close()
    }

    @Test func presenceSpansNodesWithJoinAndLeaveEvents() async throws {
        let (a, storeA) = try node()
        let (b, storeB) = try node()
        let watcher = Recorder()
        b.subscribe(watcher, to: room, member: member(), presenceEvents: true)
        let alice = PresenceMember(id: UUID(), info: .name("alice"), transport: "test")
        let onA = Recorder()
        a.subscribe(onA, to: room, member: alice)
        try await eventually { b.presence(room).contains(alice) }
        #expect(b.presence(room).count == 2)
        try await eventually { a.presence(room).count == 2 }
        #expect(a.presence(room).count == 2, "A learned of B's member when it opened the channel")
        a.unsubscribe(onA, from: room)
        try await eventually { !b.presence(room).contains(alice) }
        let seen = watcher.events.withLock { $0 }
        #expect(seen.contains(.join(room, alice)))
        #expect(seen.contains(.leave(room, alice)))
        await storeA.close()
        await storeB.close()
    }

    @Test func aPositionTheDatabaseNeverHadIsToldOnceTheNodeHasCaughtUp() async throws {
        let (a, storeA) = try node()
        let first = try await a.publish(.text("m1"), to: room)
        let dreamer = Recorder()
        let subscription = a.subscribe(dreamer, to: room, from: StreamPosition(epoch: first.position.epoch, offset: 99), member: member())
        #expect(subscription.recovered == true, "it may be another node's, until the node has caught up")
        try await eventually { dreamer.lost.withLock { $0 } == 1 }
        #expect(dreamer.lost.withLock { $0 } == 1)
        #expect(a.presence(room).isEmpty)
        // A poll from there is told too, once the node has read the database.
        let page = await a.poll(room, since: StreamPosition(epoch: first.position.epoch, offset: 99), limit: 10, wait: .seconds(20))
        #expect(page.recovered == false)
        #expect(page.position == first.position)
        await storeA.close()
    }

    @Test func aBadAddressIsRefusedWithAClearError() {
        #expect(throws: StoreError.self) { try PostgresAddress("mysql://x@y/z") }
        #expect(throws: StoreError.self) { try PostgresAddress("postgres://127.0.0.1/db") }
        #expect(throws: StoreError.self) { try PostgresAddress("postgres://u@127.0.0.1/db?sslmode=maybe") }
        let error = #expect(throws: StoreError.self) {
            try PostgresLogStore(address: PostgresAddress("postgres://nobody@127.0.0.1:1/none"))
        }
        #expect(error?.description.contains("PostgreSQL could not") == true)
    }
}
