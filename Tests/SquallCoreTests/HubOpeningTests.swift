// SPDX-License-Identifier: Apache-2.0

import Foundation
import SquallCore
import Synchronization
import Testing

/// A channel's log read from its store when the hub first opens it: nothing waits holding a
/// thread, requests park in order, and a store that cannot answer in time is told to them.
@Suite("Opening a channel from a store")
struct HubOpeningTests {
    let room = try! ChannelName("room")

    @Test("requests on a channel whose log is being read park, then run in the order they came, once it is here")
    func requestsParkInOrder() async throws {
        let store = MemoryLogStore()
        store.hang()
        let hub = Hub(storage: .local(store))
        let answers = Mutex<[String]>([])
        let recorder = Recorder()
        let leaver = Recorder()
        hub.subscribe(recorder, to: room, member: member()) { result in
            answers.withLock { $0.append(result.map { _ in "subscribed" }.get(or: "failed")) }
        }
        hub.subscribe(leaver, to: room, member: member(), completion: { _ in })
        #expect(hub.unsubscribe(leaver, from: room), "an unsubscribe after a parked subscribe counts as done")
        hub.publish(.text("first"), to: room) { result in answers.withLock { $0.append(result.map { "published \($0.offset)" }.get(or: "failed")) } }
        try await Task.sleep(for: .milliseconds(100))
        #expect(answers.withLock { $0 }.isEmpty, "nothing runs before the log is here")
        store.resume()
        await eventually("every request answered") { answers.withLock(\.count) == 2 }
        #expect(answers.withLock { $0 } == ["subscribed", "published 1"])
        #expect(recorder.texts == ["first"], "subscribed before the publish")
        #expect(leaver.texts.isEmpty, "unsubscribed before the publish")
        #expect(hub.presence(room).count == 1)
    }

    @Test("a store that does not answer in time: every parked request is told, and the channel is not kept")
    func timeoutTellsEveryone() async throws {
        let store = MemoryLogStore()
        store.hang()
        let hub = Hub(storage: .local(store), opening: OpeningLimits(timeout: .milliseconds(300)))
        let started = ContinuousClock.now
        await #expect(throws: PublishError.self) { try await hub.publish(.text("x"), to: room) }
        await #expect(throws: StoreError.self) { try await hub.subscribe(Recorder(), to: room, member: member()) }
        await #expect(throws: StoreError.self) { try await hub.history(room) }
        await #expect(throws: StoreError.self) { try await hub.poll(room, since: nil, limit: 10, wait: .seconds(30)) }
        // Four timeouts of 0.3 s, against a poll's wait of 30: far below that even on a machine
        // busy with other tests (3 s was once exceeded).
        #expect(ContinuousClock.now - started < .seconds(15), "each within its timeout, not the poll's wait")
        await eventually("the failed channel is let go") { hub.channelCount == 0 }
        store.resume()
        #expect(try await hub.publish(.text("y"), to: room).offset == 1, "a later request opens the channel anew")
    }

    @Test("past the channels allowed to wait, an opening is refused at once")
    func boundedWaiting() async throws {
        let store = MemoryLogStore()
        store.hang()
        let hub = Hub(storage: .local(store), opening: OpeningLimits(maxReads: 1, maxBatch: 1, maxWaiting: 2, timeout: .seconds(30)))
        let refused = Mutex(0)
        for index in 0..<5 {
            hub.history(try ChannelName("c\(index)")) { result in
                if case .failure = result { refused.withLock { $0 += 1 } }
            }
        }
        // One channel is being read, two wait; the other two are refused without waiting 30 s.
        await eventually("two refused", within: 5) { refused.withLock { $0 } == 2 }
        store.resume()
    }

    @Test("many channels opened together are read in few reads, up to the batch size each, while reads are under way")
    func opensAreBatched() async throws {
        let store = MemoryLogStore()
        store.hang()
        let hub = Hub(storage: .local(store), opening: OpeningLimits(maxReads: 2, maxBatch: 100, timeout: .seconds(30)))
        let answered = Mutex(0)
        for index in 0..<1000 {
            hub.history(try ChannelName("c\(index)")) { _ in answered.withLock { $0 += 1 } }
        }
        store.resume()
        await eventually("all answered") { answered.withLock { $0 } == 1000 }
        // The first two channels each started a read; the 998 that came meanwhile waited, and
        // went 100 to a read.
        #expect(store.restores.channels == 1000)
        #expect(store.restores.largest == 100)
        #expect(store.restores.reads == 12, "\(store.restores.reads) reads for 1,000 channels")
    }

    @Test("reading, subscribing and polling leave nothing in the store; a publish makes the channel's row")
    func readsCreateNothing() async throws {
        let store = MemoryLogStore()
        let hub = Hub(storage: .local(store))
        for index in 0..<50 {
            let channel = try ChannelName("look-\(index)")
            _ = try await hub.history(channel)
            _ = try await hub.poll(channel, since: nil, limit: 10, wait: .zero)
            try await hub.subscribe(Recorder(), to: channel, member: member())
        }
        #expect(store.channels.isEmpty)
        try await hub.publish(.text("x"), to: room)
        #expect(store.channels == [room])
    }
}

extension Result {
    /// The success, or `fallback`.
    func get(or fallback: Success) -> Success {
        (try? get()) ?? fallback
    }
}
