// SPDX-License-Identifier: Apache-2.0

import Synchronization

/// How many SSE streams are open, for the admin page.
final class OpenStreams: Sendable {
    private let open = Atomic<Int>(0)

    init() {}

    func opened() { open.add(1, ordering: .relaxed) }

    func closed() { open.subtract(1, ordering: .relaxed) }

    var count: Int { open.load(ordering: .relaxed) }
}
