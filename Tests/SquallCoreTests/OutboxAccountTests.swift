// SPDX-License-Identifier: Apache-2.0

import SquallCore
import Testing

@Suite("OutboxAccount")
struct OutboxAccountTests {
    @Test("admits up to the message limit, then refuses")
    func messageLimit() {
        var outbox = OutboxAccount(limits: .init(maxMessages: 3, maxBytes: 1 << 20))
        let admitted = (0..<4).map { _ in outbox.admit(bytes: 1) }
        #expect(admitted == [true, true, true, false])
        #expect(outbox.messages == 3 && outbox.bytes == 3)
    }

    @Test("admits up to the byte limit; an empty account takes one message of any size")
    func byteLimit() {
        var outbox = OutboxAccount(limits: .init(maxMessages: 100, maxBytes: 10))
        let large = [outbox.admit(bytes: 64), outbox.admit(bytes: 1)]
        #expect(large == [true, false])
        outbox.settle(unsentBytes: 0)
        let small = [outbox.admit(bytes: 6), outbox.admit(bytes: 4), outbox.admit(bytes: 1)]
        #expect(small == [true, true, false])
    }

    @Test("an empty socket queue empties the account; a partial one keeps counting messages")
    func settleMakesRoom() {
        var outbox = OutboxAccount(limits: .init(maxMessages: 2, maxBytes: 1 << 20))
        let full = [outbox.admit(bytes: 5), outbox.admit(bytes: 5), outbox.admit(bytes: 5)]
        #expect(full == [true, true, false])
        outbox.settle(unsentBytes: 5)
        #expect(outbox.messages == 2 && outbox.bytes == 5)
        let stillFull = outbox.admit(bytes: 5)
        #expect(!stillFull)
        outbox.settle(unsentBytes: 0)
        #expect(outbox.messages == 0 && outbox.bytes == 0)
        let again = outbox.admit(bytes: 5)
        #expect(again)
    }
}
