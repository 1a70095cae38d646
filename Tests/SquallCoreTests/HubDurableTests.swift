// SPDX-License-Identifier: Apache-2.0

import Foundation
import SquallCore
import Synchronization
import Testing

/// Positions with a durable store: a channel nothing was published to has no epoch yet, and
/// the position it gives out continues into its first epoch, after a restart too, for the meta
/// TTL — never into a later one.
@Suite("Positions of unpublished channels")
struct HubDurableTests {
    let room = try! ChannelName("room")

    @Test("an unpublished channel's position resumes into its first epoch, after a restart too")
    func unpublishedResumes() async throws {
        let store = MemoryLogStore()
        let hub = Hub(storage: .local(store))
        let early = try await hub.subscribe(Recorder(), to: room, member: member())
        #expect(early.position.unpublishedAt != nil && early.position.offset == 0)
        let live = Recorder()
        try await hub.subscribe(live, to: room, from: early.position, member: member())
        for n in 1...3 { try await hub.publish(.text("m\(n)"), to: room) }
        #expect(live.texts == ["m1", "m2", "m3"], "a subscriber from before the first message gets it")

        let restarted = Hub(storage: .local(store))
        let resumed = try await restarted.history(room, since: early.position)
        #expect(resumed.recovered && resumed.messages.compactMap(\.payload.text) == ["m1", "m2", "m3"])
        let late = Recorder()
        #expect(try await restarted.subscribe(late, to: room, from: early.position, member: member()).recovered == true)
        #expect(late.texts == ["m1", "m2", "m3"])
    }

    @Test("a restart of an unpublished channel changes nothing a client sees")
    func unpublishedAcrossRestarts() async throws {
        let store = MemoryLogStore()
        let position = try await Hub(storage: .local(store)).history(room).position
        let after = try await Hub(storage: .local(store)).history(room, since: position)
        #expect(after.recovered && after.messages.isEmpty)
    }

    @Test("an unpublished position older than the meta TTL is not recoverable: the channel may have lived and been forgotten since")
    func unpublishedPositionsExpire() async throws {
        let clock = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
        let store = MemoryLogStore()
        let hub = Hub(retention: Retention(maxAge: .seconds(60), metaTTL: .seconds(600)), storage: .local(store)) { clock.withLock { $0 } }
        let position = try await hub.history(room).position
        clock.withLock { $0 += 599 }
        #expect(try await hub.history(room, since: position).recovered)
        clock.withLock { $0 += 2 }
        #expect(try await hub.history(room, since: position).recovered == false)
    }

    @Test("an epoch begun after a failed commit does not continue an unpublished position")
    func laterEpochsDoNotContinue() async throws {
        let store = MemoryLogStore()
        let hub = Hub(storage: .local(store))
        let early = try await hub.history(room).position
        try await hub.publish(.text("kept"), to: room)
        store.failCommits(true)
        await #expect(throws: PublishError.self) { try await hub.publish(.text("lost"), to: room) }
        store.failCommits(false)
        try await hub.publish(.text("after"), to: room)
        #expect(try await hub.history(room, since: early).recovered == false, "it would miss `kept`")
        let restarted = Hub(storage: .local(store))
        #expect(try await restarted.history(room, since: early).recovered == false)
    }
}
