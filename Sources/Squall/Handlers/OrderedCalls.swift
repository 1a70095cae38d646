// SPDX-License-Identifier: Apache-2.0

import DequeModule
import Synchronization

/// One connection's calls that wait on something slow — the backend's hooks — run one at a
/// time, in the order they were asked, so that a client's publishes reach the log in the order
/// it sent them however long each hook takes.
///
/// Contracts: a task runs only while calls wait (an idle connection costs none); what waits is
/// bounded by the caller (each call is counted in the connection's ``PendingRequests``, which
/// stops reading the client past its bound).
final class OrderedCalls: Sendable {
    typealias Call = @Sendable () async -> Void

    private struct State {
        var calls = Deque<Call>()
        var running = false
    }

    private let state = Mutex(State())

    init() {}

    /// Runs `call` after every call asked before it.
    func run(_ call: @escaping Call) {
        let start = state.withLock { state in
            state.calls.append(call)
            defer { state.running = true }
            return !state.running
        }
        guard start else { return }
        Task {
            while let next = next() { await next() }
        }
    }

    private func next() -> Call? {
        state.withLock { state in
            guard let call = state.calls.popFirst() else {
                state.running = false
                return nil
            }
            return call
        }
    }
}
