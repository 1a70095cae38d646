// SPDX-License-Identifier: Apache-2.0

import Foundation
import SquallCore
import Testing

@Suite struct UUIDTextTests {
    @Test func theTextIsFoundationsUUIDString() {
        var ids = [UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))]
        ids.append(UUID(uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255)))
        for _ in 0..<1000 { ids.append(.random()) }
        for id in ids { #expect(id.text == id.uuidString) }
    }
}
