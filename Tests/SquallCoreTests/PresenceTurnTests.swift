// SPDX-License-Identifier: Apache-2.0

import Foundation
import SquallCore
import Synchronization
import Testing

/// A subscriber that keeps the presence events it receives, as objects.
private final class EventKeeper: Subscriber {
    let events = Mutex<[PresenceEvent]>([])
    func receive(_ message: Message) {}
    func receive(_ event: PresenceEvent) { events.withLock { $0.append(event) } }
    func lost(_ channel: ChannelName, current: StreamPosition) {}
    var changes: [PresenceChange] { events.withLock { $0.map(\.change) } }
}

/// Presence changes gather for a turn and reach watchers merged per member, each as one event
/// for all of them: churn costs watchers at most two events per member per turn.
@Suite("Presence turns")
struct PresenceTurnTests {
    let room = try! ChannelName("room")

    private func watched(_ count: Int = 1, turn: Duration = .milliseconds(50)) async throws -> (Hub, [EventKeeper]) {
        let hub = Hub(presenceTurn: turn)
        var watchers: [EventKeeper] = []
        for _ in 0..<count {
            let watcher = EventKeeper()
            try await hub.subscribe(watcher, to: room, member: member("watcher"), presenceEvents: true)
            watchers.append(watcher)
        }
        await eventually("the watchers' own joins") { watchers.allSatisfy { $0.changes.count == count } }
        return (hub, watchers)
    }

    @Test("a member that joins and leaves within one turn was never seen")
    func joinThenLeaveIsNothing() async throws {
        let (hub, watchers) = try await watched()
        let churner = Recorder()
        for _ in 0..<1000 {
            try await hub.subscribe(churner, to: room, member: member("churner"))
            hub.unsubscribe(churner, from: room)
        }
        try await Task.sleep(for: .milliseconds(200))
        // Each subscribe is a new member (a new id): within a turn each pair cancels out; a
        // pair split across two turns is one join and one leave.
        let heard = watchers[0].changes.count - 1
        #expect(heard <= 2 * 10, "\(heard) events for 1,000 subscribe/unsubscribe pairs")
    }

    @Test("a member that leaves and joins again within one turn never left; with another info it left and joined")
    func leaveThenJoin() async throws {
        let (hub, watchers) = try await watched(turn: .milliseconds(300))
        let guest = Recorder()
        let alice = PresenceMember(id: UUID(), info: .name("alice"), transport: "test")
        try await hub.subscribe(guest, to: room, member: alice)
        await eventually("alice joined") { watchers[0].changes.count == 2 }
        hub.unsubscribe(guest, from: room)
        try await hub.subscribe(guest, to: room, member: alice)
        try await Task.sleep(for: .milliseconds(500))
        #expect(watchers[0].changes.count == 2, "nothing to tell")
        hub.unsubscribe(guest, from: room)
        let renamed = PresenceMember(id: alice.id, info: .name("alice 2"), transport: "test")
        try await hub.subscribe(guest, to: room, member: renamed)
        await eventually("a leave and a join") { watchers[0].changes.count == 4 }
        #expect(Array(watchers[0].changes.suffix(2)) == [.leave(room, alice), .join(room, renamed)])
    }

    @Test("every watcher gets the same event object, encoded once for all of them")
    func encodedOnce() async throws {
        let (hub, watchers) = try await watched(5)
        try await hub.subscribe(Recorder(), to: room, member: member("guest"))
        await eventually("every watcher heard") { watchers.allSatisfy { $0.changes.count == 6 } }
        let last = watchers.map { $0.events.withLock { $0.last } }
        #expect(last.allSatisfy { $0 === last[0] })
    }
}
