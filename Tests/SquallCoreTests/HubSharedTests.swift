// SPDX-License-Identifier: Apache-2.0

import Foundation
import SquallCore
import Synchronization
import Testing

/// The hub as one node of several on a shared store (``InProcessCluster``): catch-up, gaps,
/// restarts and positions across nodes, without a database.
@Suite("Nodes on a shared store")
struct HubSharedTests {
    let room = try! ChannelName("room")

    /// Two hubs, each a node of `cluster`.
    private func twoNodes(on cluster: InProcessCluster = InProcessCluster()) -> (Hub, Hub) {
        (Hub(storage: .shared(cluster.node())), Hub(storage: .shared(cluster.node())))
    }

    @Test("messages published on two nodes reach subscribers on both, in one order")
    func oneOrder() async throws {
        let (a, b) = twoNodes()
        let onA = Recorder()
        let onB = Recorder()
        try await a.subscribe(onA, to: room, member: member())
        try await b.subscribe(onB, to: room, member: member())
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (name, hub) in [("a", a), ("b", b)] {
                group.addTask { for n in 0..<100 { try await hub.publish(.text("\(name)\(n)"), to: room) } }
            }
            try await group.waitForAll()
        }
        await eventually("200 on each") { onA.messages.withLock(\.count) == 200 && onB.messages.withLock(\.count) == 200 }
        #expect(onA.offsets == Array(1...200))
        #expect(onA.texts == onB.texts)
        #expect(try await a.history(room).position == (try await b.history(room).position))
    }

    @Test("a publisher subscribed on its node sees its message before its acknowledgement, even when another node's came between")
    func acknowledgementAfterTheMessage() async throws {
        let cluster = InProcessCluster()
        let (a, b) = twoNodes(on: cluster)
        let onA = Recorder()
        try await a.subscribe(onA, to: room, member: member())
        try await a.publish(.text("a1"), to: room)
        cluster.dropNotifications(true)
        try await b.publish(.text("b1"), to: room)  // A does not hear of it: its next commit finds a gap
        let mine = try await a.publish(.text("a2"), to: room)
        #expect(mine.offset == 3)
        #expect(onA.texts == ["a1", "b1", "a2"], "b1 was read in, in order, before a2 was acknowledged")
    }

    @Test("a node told to resynchronize reads what it missed")
    func resynchronize() async throws {
        let cluster = InProcessCluster()
        let (a, b) = twoNodes(on: cluster)
        let onA = Recorder()
        try await a.subscribe(onA, to: room, member: member())
        cluster.dropNotifications(true)
        for n in 1...3 { try await b.publish(.text("m\(n)"), to: room) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(onA.texts.isEmpty, "nothing told A")
        a.resynchronize()
        await eventually("A caught up") { onA.texts == ["m1", "m2", "m3"] }
    }

    @Test("a node that fell behind what the store keeps tells its subscribers they may have missed messages")
    func fellBehind() async throws {
        let cluster = InProcessCluster()
        let (a, b) = twoNodes(on: cluster)
        let onA = Recorder()
        try await a.subscribe(onA, to: room, member: member())
        cluster.dropNotifications(true)
        for n in 1...7 { try await b.publish(.text("m\(n)"), to: room) }
        cluster.trim(room, through: 4)
        a.resynchronize()
        await eventually("told") { onA.lost.withLock(\.count) == 1 }
        #expect(onA.messages.withLock(\.count) == 0, "not handed 5–7 as if nothing came before")
        #expect(try await a.history(room).messages.map(\.offset) == [5, 6, 7])
        #expect(a.presence(room).isEmpty, "it is no longer subscribed")
    }

    @Test("a position another node gave out resumes on a node that has not heard of it; one the store never had is told")
    func positionsAcrossNodes() async throws {
        let cluster = InProcessCluster()
        let (a, b) = twoNodes(on: cluster)
        _ = try await a.history(room)  // B will not hear of what A publishes
        cluster.dropNotifications(true)
        _ = try await b.history(room)
        var last = try await a.publish(.text("m1"), to: room)
        last = try await a.publish(.text("m2"), to: room)
        try await a.publish(.text("m3"), to: room)
        let page = try await b.poll(room, since: last.position, limit: 10, wait: .seconds(5))
        #expect(page.recovered && page.messages.compactMap(\.payload.text) == ["m3"])

        let dreamer = Recorder()
        let made = StreamPosition(epoch: last.position.epoch, offset: 99)
        #expect(try await b.subscribe(dreamer, to: room, from: made, member: member()).recovered == true, "until B has caught up")
        await eventually("the dreamer is told") { dreamer.lost.withLock(\.count) == 1 }
        let told = try await b.poll(room, since: made, limit: 10, wait: .seconds(5))
        #expect(told.recovered == false && told.position.offset == 3)
    }

    @Test("a position from before a channel's first message, taken on one node, resumes on another after it")
    func unpublishedAcrossNodes() async throws {
        let (a, b) = twoNodes()
        let early = try await a.history(room).position
        #expect(early.unpublishedAt != nil)
        let waiting = Recorder()
        try await a.subscribe(waiting, to: room, from: early, member: member())
        for n in 1...2 { try await b.publish(.text("m\(n)"), to: room) }
        await eventually("A's subscriber got both") { waiting.texts == ["m1", "m2"] }
        let onB = try await b.history(room, since: early)
        #expect(onB.recovered && onB.messages.compactMap(\.payload.text) == ["m1", "m2"])
        #expect(waiting.lost.withLock(\.count) == 0)
    }

    @Test("a channel the store forgot starts a new epoch: its subscribers are told, and old positions are not recoverable")
    func forgottenChannel() async throws {
        let cluster = InProcessCluster()
        let (a, b) = twoNodes(on: cluster)
        let onA = Recorder()
        try await a.subscribe(onA, to: room, member: member())
        let old = try await b.publish(.text("old"), to: room)
        await eventually("A has it") { onA.texts == ["old"] }
        cluster.forget(room)
        let new = try await b.publish(.text("new"), to: room)
        #expect(new.offset == 1 && new.position.epoch != old.position.epoch)
        await eventually("A's subscriber told") { onA.lost.withLock(\.count) == 1 }
        #expect(try await a.history(room, since: old.position).recovered == false)
    }

    @Test("presence spans nodes: members on either are listed on both, with join and leave events")
    func presenceAcrossNodes() async throws {
        let (a, b) = twoNodes()
        let watcher = Recorder()
        try await b.subscribe(watcher, to: room, member: member("watcher"), presenceEvents: true)
        let alice = member("alice")
        let onA = Recorder()
        try await a.subscribe(onA, to: room, member: alice)
        await eventually("B lists alice") { b.presence(room).contains(alice) }
        await eventually("A lists B's watcher") { a.presence(room).count == 2 }
        a.unsubscribe(onA, from: room)
        await eventually("alice gone from B") { !b.presence(room).contains(alice) }
        await eventually("B's watcher heard both") { watcher.changes.contains(.leave(room, alice)) }
        #expect(watcher.changes.contains(.join(room, alice)))
    }

    @Test("an idempotency key reused with another payload on another node is refused")
    func keyReusedAcrossNodes() async throws {
        let (a, b) = twoNodes()
        let key = try IdempotencyKey("order-7")
        let first = try await a.publish(.text("pay 10"), to: room, idempotencyKey: key)
        #expect(try await b.publish(.text("pay 10"), to: room, idempotencyKey: key).id == first.id, "a retry")
        await #expect(throws: PublishError.self) { try await b.publish(.text("pay 99"), to: room, idempotencyKey: key) }
        #expect(try await a.history(room).messages.count == 1)
    }
}
