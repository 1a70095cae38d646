// SPDX-License-Identifier: Apache-2.0

import Foundation
import SquallCore
import Testing

@Suite("UUID.random")
struct RandomUUIDTests {
    @Test("ids are version 4, RFC 4122 variant, and distinct across many refills of the pool")
    func versionAndUniqueness() {
        let ids = (0..<10_000).map { _ in UUID.random() }
        #expect(Set(ids).count == ids.count)
        for id in ids {
            #expect(id.uuid.6 >> 4 == 4)
            #expect(id.uuid.8 >> 6 == 0b10)
            #expect(id.uuidString.count == 36)
        }
        // Random, not a counter: the bytes of consecutive ids share nothing but the version bits.
        #expect(ids[0].uuid.0 != ids[1].uuid.0 || ids[0].uuid.1 != ids[1].uuid.1 || ids[0].uuid.2 != ids[1].uuid.2)
    }
}
