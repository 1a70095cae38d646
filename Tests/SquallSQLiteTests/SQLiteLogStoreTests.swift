// SPDX-License-Identifier: Apache-2.0

import Foundation
import GRDB
import SquallCore
import SquallSQLite
import Synchronization
import Testing

/// A subscriber that keeps the texts it receives.
private final class Recorder: Subscriber {
    let texts = Mutex<[String]>([])
    func receive(_ message: Message) { texts.withLock { $0.append(message.payload.text ?? "") } }
    func receive(_ event: PresenceEvent) {}
    func lost(_ channel: ChannelName, current: StreamPosition) {}
}

/// A hub on a real SQLite file, and the same file opened again as a restart would.
@Suite("SQLite log store")
struct SQLiteLogStoreTests {
    let room = try! ChannelName("room")
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("squall-\(UUID().uuidString).sqlite").path

    private func member() -> PresenceMember {
        PresenceMember(id: UUID(), info: nil, transport: "test")
    }

    @Test func aRestartedHubKeepsHistoryEpochAndOffsets() async throws {
        let before = Hub(store: try SQLiteLogStore(path: path))
        var published: [Message] = []
        for n in 1...3 { published.append(try await before.publish(.text("m\(n)"), to: room)) }
        try await before.publish(.binary([0, 255, 7]), to: room)

        let after = Hub(store: try SQLiteLogStore(path: path))
        let history = (try await after.history(room))
        #expect(history.messages.map(\.position) == published.map(\.position) + [StreamPosition(epoch: published[0].position.epoch, offset: 4)])
        #expect(history.messages.map(\.id).prefix(3) == published.map(\.id)[...])
        #expect(history.messages.last?.payload == .binary([0, 255, 7]))
        let next = try await after.publish(.text("m5"), to: room)
        #expect(next.position == StreamPosition(epoch: published[0].position.epoch, offset: 5), "offsets continue in the same epoch")

        let recorder = Recorder()
        let subscription = try await after.subscribe(recorder, to: room, from: published[0].position, member: member())
        #expect(subscription.recovered == true && subscription.replayed == 4)
        #expect(recorder.texts.withLock { $0 } == ["m2", "m3", "", "m5"])
    }

    @Test func concurrentPublishesAreAllAcknowledgedInOneOrderThatARestartKeeps() async throws {
        let hub = Hub(store: try SQLiteLogStore(path: path))
        let recorder = Recorder()
        try await hub.subscribe(recorder, to: room, member: member())
        let offsets = try await withThrowingTaskGroup(of: UInt64.self) { group in
            for n in 0..<500 { group.addTask { try await hub.publish(.text("\(n)"), to: room).offset } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(offsets.sorted() == Array(1...500), "each acknowledged with its own offset")
        let delivered = recorder.texts.withLock { $0 }
        let restored = try await Hub(store: try SQLiteLogStore(path: path)).history(room).messages
        #expect(restored.map(\.offset) == Array(1...500))
        #expect(restored.compactMap(\.payload.text) == delivered, "subscribers saw the committed order")
    }

    @Test func retentionDeletesRowsTheHubNoLongerKeeps() async throws {
        let hub = Hub(retention: Retention(maxMessages: 5), store: try SQLiteLogStore(path: path))
        for n in 1...40 { try await hub.publish(.text("\(n)"), to: room) }
        let reader = try DatabaseQueue(path: path)
        var rows = Int.max
        for _ in 0..<200 where rows > 5 {
            rows = try await reader.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM messages") ?? 0 }
            if rows > 5 { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(rows == 5)
        let restored = Hub(retention: Retention(maxMessages: 5), store: try SQLiteLogStore(path: path))
        #expect((try await restored.history(room)).messages.compactMap(\.payload.text) == ["36", "37", "38", "39", "40"])
        #expect(try await restored.publish(.text("41"), to: room).offset == 41)
    }

    @Test func aFailedCommitIsRefusedAndStartsANewEpochWithNoGap() async throws {
        let hub = Hub(store: try SQLiteLogStore(path: path))
        let first = try await hub.publish(.text("kept"), to: room)
        let recorder = Recorder()
        try await hub.subscribe(recorder, to: room, member: member())

        // Another connection holds the write lock: the store's commit fails at once (SQLITE_BUSY).
        var unsafe = Configuration()
        unsafe.allowsUnsafeTransactions = true
        let blocker = try DatabaseQueue(path: path, configuration: unsafe)
        try await blocker.writeWithoutTransaction { db in try db.execute(sql: "BEGIN IMMEDIATE") }
        await #expect(throws: PublishError.self) { try await hub.publish(.text("lost"), to: room) }
        try await blocker.writeWithoutTransaction { db in try db.execute(sql: "COMMIT") }

        let next = try await hub.publish(.text("after"), to: room)
        #expect(next.position.epoch != first.position.epoch && next.offset == 1)
        #expect(recorder.texts.withLock { $0 } == ["after"], "no subscriber saw the message that was not stored")
        #expect((try await hub.history(room, since: first.position)).recovered == false, "a position of the ended epoch is reported, not papered over")
        let restored = try await Hub(store: try SQLiteLogStore(path: path)).history(room)
        #expect(restored.position == next.position && restored.messages.compactMap(\.payload.text) == ["after"])
    }

    @Test func retriesDuringTheCommitGetTheFirstPublishAndARestartStillKnowsItsKey() async throws {
        let hub = Hub(store: try SQLiteLogStore(path: path))
        let key = try IdempotencyKey("retry-me")
        let answers = try await withThrowingTaskGroup(of: Message.self) { group in
            for _ in 0..<10 { group.addTask { try await hub.publish(.text("once"), to: room, idempotencyKey: key) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(answers.map(\.id)).count == 1 && answers.allSatisfy { $0.offset == 1 })
        let restarted = Hub(store: try SQLiteLogStore(path: path))
        let retry = try await restarted.publish(.text("once"), to: room, idempotencyKey: key)
        #expect(retry.id == answers[0].id && retry.position == answers[0].position)
        #expect((try await restarted.history(room)).messages.compactMap(\.payload.text) == ["once"])
    }

    @Test func aPublishWhoseCommitFailedIsAppendedByItsRetry() async throws {
        let hub = Hub(store: try SQLiteLogStore(path: path))
        var unsafe = Configuration()
        unsafe.allowsUnsafeTransactions = true
        let blocker = try DatabaseQueue(path: path, configuration: unsafe)
        try await blocker.writeWithoutTransaction { db in try db.execute(sql: "BEGIN IMMEDIATE") }
        let key = try IdempotencyKey("after-outage")
        await #expect(throws: PublishError.self) { try await hub.publish(.text("late"), to: room, idempotencyKey: key) }
        try await blocker.writeWithoutTransaction { db in try db.execute(sql: "COMMIT") }
        let retry = try await hub.publish(.text("late"), to: room, idempotencyKey: key)
        #expect(retry.offset == 1)
        #expect(try await hub.history(room).messages.compactMap(\.payload.text) == ["late"])
    }

    @Test func afterAFailedCommitNoLaterMessageOfItsEpochIsStoredSoARestartFindsNoGap() async throws {
        let store = try SQLiteLogStore(path: path)
        func message(_ offset: UInt64) -> Message {
            Message(channel: room, position: StreamPosition(epoch: "e1", offset: offset), time: Date(), publisher: nil, payload: .text("\(offset)"))
        }
        func append(_ offset: UInt64, to store: SQLiteLogStore) async -> StoreError? {
            await withCheckedContinuation { done in
                do throws(StoreError) {
                    try store.append(message(offset), idempotencyKey: nil) { done.resume(returning: $0) }
                } catch {
                    done.resume(returning: error)
                }
            }
        }
        #expect(await append(1, to: store) == nil)
        var unsafe = Configuration()
        unsafe.allowsUnsafeTransactions = true
        let blocker = try DatabaseQueue(path: path, configuration: unsafe)
        try await blocker.writeWithoutTransaction { db in try db.execute(sql: "BEGIN IMMEDIATE") }
        #expect(await append(2, to: store) != nil)
        try await blocker.writeWithoutTransaction { db in try db.execute(sql: "COMMIT") }
        #expect(await append(3, to: store) != nil, "offset 3 after the lost 2 would be a gap")
        let again = try #require(try await store.restore([room], retention: Retention())[room])
        #expect(again.epoch != "e1" && again.lastOffset == 0 && !again.isFirst, "the ended epoch does not come back in this process")
        let restored = try #require(try await SQLiteLogStore(path: path).restore([room], retention: Retention())[room])
        #expect(restored.epoch == "e1" && restored.lastOffset == 1 && restored.messages.map(\.offset) == [1])
    }

    @Test func closeCommitsWhatIsQueuedAndRefusesLaterAppends() async throws {
        let store = try SQLiteLogStore(path: path)
        let outcomes = Mutex<[StoreError?]>([])
        for offset in UInt64(1)...200 {
            let message = Message(channel: room, position: StreamPosition(epoch: "e1", offset: offset), time: Date(), publisher: nil, payload: .text("m"))
            try store.append(message, idempotencyKey: nil) { error in outcomes.withLock { $0.append(error) } }
        }
        await store.close()
        #expect(outcomes.withLock { $0.count == 200 && $0.allSatisfy { $0 == nil } }, "every queued message was committed before close returned")
        let late = Message(channel: room, position: StreamPosition(epoch: "e1", offset: 201), time: Date(), publisher: nil, payload: .text("late"))
        #expect(throws: StoreError.self, "refused at once, nothing queued") { try store.append(late, idempotencyKey: nil) { _ in } }
        await store.close()
        let restored = try #require(try await SQLiteLogStore(path: path).restore([room], retention: Retention())[room])
        #expect(restored.lastOffset == 200 && restored.messages.count == 200)
    }

    @Test func aPublishAfterTheStoreClosedIsRefusedWithoutHoldingUpTheHub() async throws {
        let store = try SQLiteLogStore(path: path)
        let hub = Hub(store: store)
        try await hub.publish(.text("before"), to: room)
        await store.close()
        await #expect(throws: PublishError.self) { try await hub.publish(.text("after"), to: room) }
        let history = (try await hub.history(room))
        #expect(history.messages.compactMap(\.payload.text) == ["before"], "a refusal keeps the epoch and its history")
    }

    @Test func aFullQueueRefusesAppendsAtOnceAndCommitsWhatItTook() async throws {
        let store = try SQLiteLogStore(path: path, maxQueuedBytes: 8 << 10)
        let outcomes = Mutex<[StoreError?]>([])
        let payload = String(repeating: "x", count: 1024)
        // Appends do not wait: 500 in a row outrun the writer, whose queue holds about seven.
        // As the hub does, a refused message's offset goes to the next one.
        var next: UInt64 = 1
        var refused = 0
        for _ in 0..<500 {
            let message = Message(channel: room, position: StreamPosition(epoch: "q", offset: next), time: Date(), publisher: nil, payload: .text(payload))
            do {
                try store.append(message, idempotencyKey: nil) { error in outcomes.withLock { $0.append(error) } }
                next += 1
            } catch {
                refused += 1
            }
        }
        for _ in 0..<500 where outcomes.withLock({ $0.count }) < 500 - refused { try await Task.sleep(for: .milliseconds(10)) }
        #expect(refused > 0 && refused < 500, "some appends found the queue full: \(refused) refused")
        #expect(outcomes.withLock { $0.count == 500 - refused && $0.allSatisfy { $0 == nil } }, "every accepted append is committed")
        await store.close()
        let restored = try #require(try await SQLiteLogStore(path: path).restore([room], retention: Retention(maxMessages: 1000))[room])
        #expect(restored.lastOffset == next - 1 && restored.messages.map(\.offset) == Array(1..<next), "no gap")
    }

    @Test func aRestoreBringsBackOnlyTheUnbrokenRunOfOffsetsEndingAtTheLast() async throws {
        let hub = Hub(store: try SQLiteLogStore(path: path))
        for n in 1...5 { try await hub.publish(.text("\(n)"), to: room) }
        let writer = try DatabaseQueue(path: path)
        try await writer.write { db in try db.execute(sql: "DELETE FROM messages WHERE seq = 3") }
        let restored = try #require(try await SQLiteLogStore(path: path).restore([room], retention: Retention())[room])
        #expect(restored.lastOffset == 5 && restored.messages.compactMap(\.payload.text) == ["4", "5"])
    }

    @Test func expiredMessagesAreDeletedFromTheFileAfterARestartWhetherOrNotTheirChannelIsOpened() async throws {
        // 300 messages on 30 channels, then the process is gone; the next one never opens them.
        let firstStore = try SQLiteLogStore(path: path)
        let first = Hub(store: firstStore)
        for index in 0..<300 { try await first.publish(.text("m"), to: try ChannelName("c\(index % 30)")) }
        await firstStore.close()
        // The next process keeps messages 2 s.
        let retention = Retention(maxAge: .seconds(2), metaTTL: .seconds(600))
        let reader = try DatabaseQueue(path: path)
        #expect(try await reader.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM messages") } == 300)
        let store = try SQLiteLogStore(path: path, retention: retention)
        var rows = 300
        for _ in 0..<100 where rows > 0 {
            try await Task.sleep(for: .milliseconds(100))
            rows = try await reader.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM messages") ?? -1 }
        }
        #expect(rows == 0, "\(rows) expired rows left")
        #expect(try await reader.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM channels") } == 30, "positions outlive messages")
        await store.close()
    }

    @Test func aChannelPastItsMetaTTLIsForgottenRowsAndAll() async throws {
        let retention = Retention(maxAge: .seconds(1), metaTTL: .seconds(2))
        let store = try SQLiteLogStore(path: path, retention: retention)
        let hub = Hub(retention: retention, store: store)
        let gone = try await hub.publish(.text("old"), to: room)
        let reader = try DatabaseQueue(path: path)
        var channels = 1
        for _ in 0..<100 where channels > 0 {
            try await Task.sleep(for: .milliseconds(100))
            channels = try await reader.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM channels") ?? -1 }
        }
        #expect(channels == 0)
        let restarted = Hub(retention: retention, store: try SQLiteLogStore(path: path, retention: retention))
        #expect(try await restarted.history(room, since: gone.position).recovered == false, "a forgotten position is not recoverable")
        let again = try await restarted.publish(.text("new"), to: room)
        #expect(again.offset == 1 && again.position.epoch != gone.position.epoch)
        await store.close()
    }
}

extension SQLiteLogStoreTests {
    @Test func expiredMessagesAreSweptWhileAppendsNeverStop() async throws {
        // Before: the sweep waited for a moment with no append queued, so a file under sustained
        // load kept the expired messages of channels nobody opens forever.
        let firstStore = try SQLiteLogStore(path: path)
        let first = Hub(store: firstStore)
        for index in 0..<300 { try await first.publish(.text("m"), to: try ChannelName("c\(index % 30)")) }
        await firstStore.close()
        let retention = Retention(maxAge: .seconds(1), metaTTL: .seconds(600))
        let store = try SQLiteLogStore(path: path, retention: retention)
        let load = try ChannelName("load")
        let stop = Mutex(false)
        // Appends faster than the writer commits, so a batch always waits behind the one it
        // takes; on a thread of its own, so the tests beside this one keep the shared pool.
        let finished = Mutex(false)
        let producer = Thread {
            var offset: UInt64 = 0
            while !stop.withLock({ $0 }) {
                do {
                    for _ in 0..<5_000 {
                        offset += 1
                        let message = Message(
                            channel: load, position: StreamPosition(epoch: "load", offset: offset), time: Date(), publisher: nil, payload: .text("m"))
                        try store.append(message, idempotencyKey: nil) { _ in }
                    }
                } catch {
                    usleep(1000)  // the queue is full: it stays so
                }
            }
            finished.withLock { $0 = true }
        }
        producer.start()
        let reader = try DatabaseQueue(path: path)
        var rows = 300
        for _ in 0..<100 where rows > 0 {
            try await Task.sleep(for: .milliseconds(100))
            rows = try await reader.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM messages WHERE channel != 'load'") ?? -1 }
        }
        stop.withLock { $0 = true }
        while !finished.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(rows == 0, "\(rows) expired rows left while appends went on")
        await store.close()
    }
}
