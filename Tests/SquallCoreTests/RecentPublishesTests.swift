// SPDX-License-Identifier: Apache-2.0

import Foundation
import SquallCore
import Synchronization
import Testing

@Suite("Idempotent publish: a retry with the same key returns the first message")
struct RecentPublishesTests {
    let room = try! ChannelName("room")

    /// A clock the test moves by hand.
    final class Clock: Sendable {
        let time = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
        func advance(_ seconds: Double) { time.withLock { $0 += seconds } }
        var now: @Sendable () -> Date { { self.time.withLock { $0 } } }
    }

    @Test("a retry appends nothing and no subscriber sees it twice; another key or channel appends")
    func retryReturnsTheFirst() async throws {
        let hub = Hub()
        let recorder = Recorder()
        try await hub.subscribe(recorder, to: room, member: PresenceMember(id: UUID(), info: .name("r"), transport: "test"))
        let key = try IdempotencyKey("order-42")
        let first = try await hub.publish(.text("pay"), to: room, idempotencyKey: key)
        let retry = try await hub.publish(.text("pay"), to: room, idempotencyKey: key)
        #expect(retry.id == first.id && retry.position == first.position && retry.time == first.time)
        #expect(recorder.texts == ["pay"])
        #expect(try await hub.history(room).messages.count == 1)
        let other = try await hub.publish(.text("pay"), to: room, idempotencyKey: try IdempotencyKey("order-43"))
        #expect(other.offset == 2)
        let elsewhere = try await hub.publish(.text("pay"), to: try ChannelName("elsewhere"), idempotencyKey: key)
        #expect(elsewhere.offset == 1 && elsewhere.id != first.id)
    }

    @Test("a key used again with another payload is refused, and the first publish stands")
    func reusedKeyIsRefused() async throws {
        let hub = Hub()
        let key = try IdempotencyKey("order-42")
        let first = try await hub.publish(.text("pay 10"), to: room, idempotencyKey: key)
        await #expect(throws: PublishError.self) { try await hub.publish(.text("pay 99"), to: room, idempotencyKey: key) }
        await #expect(throws: PublishError.self) { try await hub.publish(.binary(Array("pay 10".utf8)), to: room, idempotencyKey: key) }
        #expect(try await hub.publish(.text("pay 10"), to: room, idempotencyKey: key).id == first.id)
        #expect(try await hub.history(room).messages.map(\.offset) == [1])
    }

    @Test("a key is remembered for the window, and the oldest goes first past maxKeys")
    func windowAndBound() async throws {
        let clock = Clock()
        let hub = Hub(idempotency: IdempotencyWindow(duration: .seconds(300), maxKeys: 2), now: clock.now)
        let a = try IdempotencyKey("a")
        let first = try await hub.publish(.text("1"), to: room, idempotencyKey: a)
        clock.advance(299)
        #expect(try await hub.publish(.text("1"), to: room, idempotencyKey: a).offset == first.offset)
        clock.advance(2)
        #expect(try await hub.publish(.text("1"), to: room, idempotencyKey: a).offset == 2, "past the window it is a new publish")

        let b = try await hub.publish(.text("b"), to: room, idempotencyKey: try IdempotencyKey("b"))
        _ = try await hub.publish(.text("c"), to: room, idempotencyKey: try IdempotencyKey("c"))
        #expect(try await hub.publish(.text("b"), to: room, idempotencyKey: try IdempotencyKey("b")).offset == b.offset)
        #expect(try await hub.publish(.text("1"), to: room, idempotencyKey: a).offset == 5, "the oldest of three keys was forgotten")
    }

    @Test("keys are 1 to 255 visible ASCII characters")
    func keyValidation() {
        for bad in ["", " ", "a b", "é", String(repeating: "k", count: 256), "tab\t"] {
            #expect(throws: IdempotencyKeyError.self, "\(bad.debugDescription)") { try IdempotencyKey(bad) }
        }
        #expect((try? IdempotencyKey(String(repeating: "k", count: 255))) != nil)
        #expect((try? IdempotencyKey("550e8400-e29b-41d4-a716-446655440000")) != nil)
    }
}
