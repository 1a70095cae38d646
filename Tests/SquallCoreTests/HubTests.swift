// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import SquallCore
import Synchronization
import Testing

/// A subscriber that records what it receives.
final class Recorder: Subscriber {
    let messages = Mutex<[Message]>([])
    let events = Mutex<[PresenceChange]>([])
    let lost = Mutex<[StreamPosition]>([])
    func receive(_ message: Message) { messages.withLock { $0.append(message) } }
    func receive(_ event: PresenceEvent) { events.withLock { $0.append(event.change) } }
    func lost(_ channel: ChannelName, current: StreamPosition) { lost.withLock { $0.append(current) } }
    var texts: [String] { messages.withLock { $0.compactMap(\.payload.text) } }
    var offsets: [UInt64] { messages.withLock { $0.map(\.offset) } }
    var changes: [PresenceChange] { events.withLock { $0 } }
}

/// Waits until `condition` holds, for at most `seconds`; records a failure if it never does.
func eventually(
    _ what: String, within seconds: Double = 10, sourceLocation: SourceLocation = #_sourceLocation, _ condition: () -> Bool
) async {
    let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
    while !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("not within \(seconds) s: \(what)", sourceLocation: sourceLocation)
            return
        }
        try? await Task.sleep(for: .milliseconds(5))
    }
}

func member(_ name: String = "x") -> PresenceMember {
    PresenceMember(id: UUID(), info: .name(name), transport: "test")
}

@Suite("Hub and channel logs")
struct HubTests {
    let room = try! ChannelName("room")

    @Test("offsets start at 1 and grow by one; every message has a v4 id and its channel's epoch")
    func offsets() async throws {
        let hub = Hub()
        var messages: [Message] = []
        for n in 1...3 { messages.append(try await hub.publish(.text("m\(n)"), to: room)) }
        #expect(messages.map(\.offset) == [1, 2, 3])
        #expect(Set(messages.map(\.position.epoch)).count == 1)
        #expect(messages.allSatisfy { $0.id.uuidString.dropFirst(14).first == "4" })
        let other = try await hub.publish(.text("elsewhere"), to: try! ChannelName("other"))
        #expect(other.offset == 1 && other.position.epoch != messages[0].position.epoch)
    }

    @Test("subscribe from a position replays what came after it, then live, each once; the answer comes before the replay")
    func resume() async throws {
        let hub = Hub()
        let first = try await hub.publish(.text("a"), to: room)
        try await hub.publish(.text("b"), to: room)
        try await hub.publish(.text("c"), to: room)
        let recorder = Recorder()
        let replyBeforeReplay = Mutex(false)
        let subscription = try await hub.subscribe(recorder, to: room, from: first.position, member: member()) { _ in
            replyBeforeReplay.withLock { $0 = recorder.texts.isEmpty }
        }
        #expect(replyBeforeReplay.withLock { $0 }, "onSubscribed runs before the replay")
        #expect(subscription.recovered == true && subscription.replayed == 2 && subscription.position.offset == 3)
        try await hub.publish(.text("d"), to: room)
        #expect(recorder.texts == ["b", "c", "d"])
    }

    @Test("without a store, a subscribe and a history are answered before the call returns")
    func memoryAnswersAtOnce() {
        let hub = Hub()
        let answered = Mutex(0)
        hub.subscribe(Recorder(), to: room, member: member()) { _ in answered.withLock { $0 += 1 } }
        hub.history(room) { _ in answered.withLock { $0 += 1 } }
        #expect(answered.withLock { $0 } == 2)
    }

    @Test("positions past retention, from another epoch, beyond the end or of an unpublished channel are not recoverable in memory")
    func unrecoverable() async throws {
        let hub = Hub(retention: Retention(maxMessages: 2))
        let first = try await hub.publish(.text("1"), to: room)
        for n in 2...4 { try await hub.publish(.text("\(n)"), to: room) }
        let epoch = first.position.epoch
        let positions = [
            first.position, StreamPosition(epoch: "other", offset: 4), StreamPosition(epoch: epoch, offset: 9), .unpublished(at: Date()),
        ]
        for position in positions {
            #expect(try await hub.history(room, since: position).recovered == false, "\(position)")
            #expect(try await hub.subscribe(Recorder(), to: room, from: position, member: member()).recovered == false)
        }
        #expect(try await hub.history(room, since: StreamPosition(epoch: epoch, offset: 2)).messages.map(\.offset) == [3, 4])
        #expect(try await hub.history(room).messages.map(\.offset) == [3, 4])
    }

    @Test("messages older than the age limit are dropped")
    func ageRetention() async throws {
        let clock = Mutex(Date(timeIntervalSince1970: 1_000_000))
        let hub = Hub(retention: Retention(maxMessages: 100, maxAge: .seconds(60))) { clock.withLock { $0 } }
        let old = try await hub.publish(.text("old"), to: room)
        clock.withLock { $0 += 61 }
        try await hub.publish(.text("new"), to: room)
        #expect(try await hub.history(room).messages.compactMap(\.payload.text) == ["new"])
        #expect(try await hub.history(room, since: StreamPosition(epoch: old.position.epoch, offset: 0)).recovered == false)
    }

    @Test("presence tracks members at once; join and leave events go, at the end of the turn, to subscribers that asked")
    func presence() async throws {
        let hub = Hub()
        let watcher = Recorder()
        let watcherMember = member("watcher")
        try await hub.subscribe(watcher, to: room, member: watcherMember, presenceEvents: true)
        let guest = Recorder()
        let guestMember = member("guest")
        try await hub.subscribe(guest, to: room, member: guestMember)
        #expect(Set(hub.presence(room)) == [watcherMember, guestMember])
        await eventually("both joins") { watcher.changes.count == 2 }
        #expect(hub.unsubscribe(guest, from: room))
        #expect(!hub.unsubscribe(guest, from: room))
        #expect(hub.presence(room) == [watcherMember])
        await eventually("the leave") { watcher.changes.count == 3 }
        #expect(watcher.changes == [.join(room, watcherMember), .join(room, guestMember), .leave(room, guestMember)])
        #expect(guest.changes.isEmpty)
    }

    @Test("a waiting poll is answered by the next publish; with no publish it answers empty")
    func poll() async throws {
        let hub = Hub()
        let start = try await hub.history(room).position
        async let woken = hub.poll(room, since: start, limit: 10, wait: .seconds(30))
        try? await Task.sleep(for: .milliseconds(50))
        try await hub.publish(.text("wake"), to: room)
        #expect(try await woken.messages.compactMap(\.payload.text) == ["wake"])
        let idle = try await hub.poll(room, since: try await hub.history(room).position, limit: 10, wait: .milliseconds(50))
        #expect(idle.messages.isEmpty && idle.recovered)
    }

    @Test("sweep forgets idle channels and says how many; a forgotten channel comes back with a new epoch")
    func sweep() async throws {
        let clock = Mutex(Date(timeIntervalSince1970: 1_000_000))
        let hub = Hub(retention: Retention(maxMessages: 10, maxAge: .seconds(1))) { clock.withLock { $0 } }
        let before = try await hub.publish(.text("x"), to: room)
        let busy = Recorder()
        try await hub.subscribe(busy, to: try! ChannelName("busy"), member: member())
        clock.withLock { $0 += 5 }
        await eventually("the join's turn ended") { hub.sweep() == 1 }
        #expect(hub.channelCount == 1, "only the channel with a subscriber is kept")
        let after = try await hub.publish(.text("y"), to: room)
        #expect(after.position.epoch != before.position.epoch && after.offset == 1)
    }

    @Test("channel names are validated; positions parse, unpublished ones with their time")
    func channelNames() {
        #expect((try? ChannelName("room-1_a.b:c@d")) != nil)
        #expect(throws: ChannelNameError.empty) { try ChannelName("") }
        #expect(throws: ChannelNameError.invalidCharacters("a b")) { try ChannelName("a b") }
        #expect(throws: ChannelNameError.tooLong(129)) { try ChannelName(String(repeating: "a", count: 129)) }
        #expect(StreamPosition("abc:12") == StreamPosition(epoch: "abc", offset: 12))
        #expect(StreamPosition("12") == nil && StreamPosition("abc:") == nil && StreamPosition(":4") == nil && StreamPosition("a:-1") == nil)
        #expect(StreamPosition("a:18446744073709551615")?.offset == .max)
        let unpublished = StreamPosition.unpublished(at: Date(timeIntervalSince1970: 1_800_000_000))
        #expect(unpublished.description == "~1800000000:0" && StreamPosition(unpublished.description) == unpublished)
        #expect(unpublished.unpublishedAt == Date(timeIntervalSince1970: 1_800_000_000))
        #expect(StreamPosition(epoch: "~1800000000", offset: 3).unpublishedAt == nil, "only offset 0 is before anything")
    }
}

@Suite("Hub bounds: read budgets, presence pages, retention bytes, maintained counts")
struct HubBoundsTests {
    let room = try! ChannelName("room")

    @Test("a read stops at its byte budget, but always returns at least one message")
    func readBudget() async throws {
        let hub = Hub()
        for index in 1...10 { try await hub.publish(.text(String(repeating: "\(index % 10)", count: 100)), to: room) }
        let budget = ReadBudget(maxBytes: 250) { $0.payload.count }
        #expect(try await hub.history(room, limit: 1000, budget: budget).messages.map(\.offset) == [9, 10])
        let start = StreamPosition(epoch: try await hub.history(room).position.epoch, offset: 0)
        #expect(try await hub.history(room, since: start, limit: 1000, budget: budget).messages.map(\.offset) == [1, 2])
        let tiny = ReadBudget(maxBytes: 1) { $0.payload.count }
        #expect(try await hub.history(room, limit: 1000, budget: tiny).messages.map(\.offset) == [10])
    }

    @Test("retention drops the oldest messages past its byte bound, counting every copy made")
    func retentionBytes() async throws {
        enum Doubled: WireFormat {
            static func encode(_ message: Message) -> ByteBuffer {
                var bytes = message.payload.bytes
                bytes.writeImmutableBuffer(message.payload.bytes)
                return bytes
            }
        }
        let hub = Hub(retention: Retention(maxMessages: 1000, maxBytes: 1000))
        for _ in 1...5 { try await hub.publish(.text(String(repeating: "x", count: 200)), to: room) }
        #expect(try await hub.history(room).messages.count == 5, "5 × 200 bytes fit in 1,000")
        for message in try await hub.history(room).messages { _ = message.encoded(Doubled.self) }
        try await hub.publish(.text("y"), to: room)
        // Each old message now costs 600 bytes: only one of them still fits beside the newest.
        #expect(try await hub.history(room).messages.map(\.offset) == [5, 6])
        let alone = Hub(retention: Retention(maxBytes: 10))
        try await alone.publish(.text(String(repeating: "z", count: 100)), to: room)
        #expect(try await alone.history(room).messages.count == 1, "the newest message is kept even past the bound")
    }

    @Test("presence comes in pages ordered by id; next and after walk them all exactly once")
    func presencePages() async throws {
        let hub = Hub()
        let subscribers = (0..<25).map { _ in Recorder() }
        for subscriber in subscribers {
            try await hub.subscribe(
                subscriber, to: room, member: PresenceMember(id: UUID(), info: .name(String(repeating: "n", count: 100)), transport: "test"))
        }
        var seen: [UUID] = []
        var after: UUID?
        var pages = 0
        repeat {
            let page = hub.presence(room, after: after, maxBytes: 1000)
            #expect(!page.members.isEmpty)
            seen += page.members.map(\.id)
            after = page.next
            pages += 1
        } while after != nil && pages < 100
        #expect(Set(seen).count == 25 && seen.count == 25 && pages > 1)
        #expect(seen.map(\.uuidString) == seen.map(\.uuidString).sorted())
    }

    @Test("channel and waiting-poll counts are kept as they change")
    func counts() async throws {
        let hub = Hub()
        for index in 0..<200 { try await hub.publish(.text("m"), to: try! ChannelName("c\(index)")) }
        #expect(hub.channelCount == 200)
        let busy = try! ChannelName("c0")
        let start = try await hub.history(busy).position
        let polls = Task { try await hub.poll(busy, since: start, limit: 10, wait: .seconds(30)) }
        while hub.waitingPolls == 0 { await Task.yield() }
        #expect(hub.waitingPolls == 1)
        polls.cancel()
        _ = try await polls.value
        #expect(hub.waitingPolls == 0)
        #expect(hub.sweep() == 0)
        #expect(hub.channelCount == 200, "channels with messages stay")
    }
}
