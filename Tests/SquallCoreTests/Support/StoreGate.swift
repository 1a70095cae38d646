// SPDX-License-Identifier: Apache-2.0

import Synchronization

/// What a test store's calls pass through: open, or shut (``hang()``) so that every call waits
/// until ``resume()``, as with a database that stops answering.
final class StoreGate: Sendable {
    private struct State {
        var shut = false
        var held: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    /// Calls wait from now on until ``resume()``.
    func hang() { state.withLock { $0.shut = true } }

    /// Lets every waiting call go on, and those after it.
    func resume() {
        let held = state.withLock { state in
            state.shut = false
            defer { state.held = [] }
            return state.held
        }
        for continuation in held { continuation.resume() }
    }

    /// Returns at once while open; while shut, once it opens.
    func pass() async {
        guard state.withLock({ $0.shut }) else { return }
        await withCheckedContinuation { continuation in
            let held = state.withLock { state -> Bool in
                guard state.shut else { return false }
                state.held.append(continuation)
                return true
            }
            if !held { continuation.resume() }
        }
    }
}
