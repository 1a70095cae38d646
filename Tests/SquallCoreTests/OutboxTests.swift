// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SquallCore
import Testing

@Suite("Outbox")
struct OutboxTests {
    @Test("hands out everything pending as one batch, in push order")
    func batchesInOrder() async {
        let outbox = Outbox()
        for n in 0..<5 { #expect(outbox.push(.text("m\(n)")) == .queued) }
        let batch = await outbox.next()
        #expect(batch == .payloads((0..<5).map { .text("m\($0)") }))
        #expect(outbox.pendingCount == 0)
    }

    @Test("a waiting consumer wakes on push")
    func wakesWaitingConsumer() async {
        let outbox = Outbox()
        async let batch = outbox.next()
        try? await Task.sleep(for: .milliseconds(20))
        outbox.push(.text("hello"))
        #expect(await batch == .payloads([.text("hello")]))
    }

    @Test("overflowing the message limit closes with slowConsumer and drops the backlog")
    func overflowByCount() async {
        let outbox = Outbox(limits: .init(maxMessages: 3, maxBytes: 1 << 20))
        for _ in 0..<3 { #expect(outbox.push(.text("x")) == .queued) }
        #expect(outbox.push(.text("x")) == .overflowed)
        #expect(outbox.push(.text("x")) == .closed)
        #expect(outbox.disconnect == .slowConsumer)
        #expect(await outbox.next() == .disconnect(.slowConsumer))
        #expect(await outbox.next() == nil)
    }

    @Test("overflowing the byte limit closes the outbox; one large payload alone is accepted")
    func overflowByBytes() async {
        let outbox = Outbox(limits: .init(maxMessages: 100, maxBytes: 10))
        #expect(outbox.push(.binary(Array(repeating: 0, count: 64))) == .queued)
        #expect(outbox.push(.binary([1])) == .overflowed)
    }

    @Test("close delivers pending payloads, then the disconnect once, then nil")
    func closeAfterPending() async {
        let outbox = Outbox()
        outbox.push(.text("last words"))
        #expect(outbox.close(.shutdown))
        #expect(!outbox.close(.normal), "only the first close counts")
        #expect(outbox.push(.text("too late")) == .closed)
        #expect(await outbox.next() == .payloads([.text("last words")]))
        #expect(await outbox.next() == .disconnect(.shutdown))
        #expect(await outbox.next() == nil)
    }

    @Test("close discarding pending skips straight to the disconnect")
    func closeDiscarding() async {
        let outbox = Outbox()
        outbox.push(.text("never sent"))
        outbox.close(.slowConsumer, discardingPending: true)
        #expect(await outbox.next() == .disconnect(.slowConsumer))
    }

    @Test("a cancelled consumer returns nil")
    func cancellation() async {
        let outbox = Outbox()
        let consumer = Task { await outbox.next() }
        try? await Task.sleep(for: .milliseconds(20))
        consumer.cancel()
        #expect(await consumer.value == nil)
    }

    @Test("finish ends a waiting consumer")
    func finishWakesConsumer() async {
        let outbox = Outbox()
        async let batch = outbox.next()
        try? await Task.sleep(for: .milliseconds(20))
        outbox.finish()
        #expect(await batch == nil)
        #expect(outbox.push(.text("x")) == .closed)
    }

    @Test("payloads share their bytes and report their kind")
    func payloadKinds() {
        let text = Payload.text("héllo")
        #expect(text.kind == .text && text.text == "héllo" && text.count == 6)
        let binary = Payload.binary(ByteBuffer(bytes: [0, 255]))
        #expect(binary.kind == .binary && binary.text == nil && binary.count == 2)
    }
}
