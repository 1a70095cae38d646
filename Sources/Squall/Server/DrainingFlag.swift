// SPDX-License-Identifier: Apache-2.0

import Synchronization

/// Whether the server has begun to shut down: set by ``ConnectionDrain`` as it starts closing
/// WebSockets, read by `/readyz`, which must say so while the listener still answers.
final class DrainingFlag: Sendable {
    private let draining = Atomic<Bool>(false)

    var isDraining: Bool { draining.load(ordering: .relaxed) }

    func start() {
        draining.store(true, ordering: .relaxed)
    }
}
