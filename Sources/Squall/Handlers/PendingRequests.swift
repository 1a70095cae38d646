// SPDX-License-Identifier: Apache-2.0

import Synchronization

/// One connection's requests that wait on a store — publishes waiting for their commit,
/// subscribes and reads waiting for a channel's log — so that a client asking faster than the
/// store answers is pushed back instead of queueing without bound: past ``pauseAbove``
/// waiting, the connection is not read (TCP holds the client back) until no more than
/// ``resumeAt`` wait. Without a store a request is answered before the next is read, so the
/// count never grows.
final class PendingRequests: Sendable {
    /// Above this many waiting requests the connection is no longer read…
    static let pauseAbove = 256
    /// …until no more than this many wait.
    static let resumeAt = 64

    private struct State {
        var waiting = 0
        var paused = false
    }

    private let state = Mutex(State())

    /// Counts a request handed to the hub. `true`: stop reading the connection.
    func begin() -> Bool {
        state.withLock { state in
            state.waiting += 1
            guard !state.paused, state.waiting > Self.pauseAbove else { return false }
            state.paused = true
            return true
        }
    }

    /// Counts an answered request. `true`: reading may resume.
    func end() -> Bool {
        state.withLock { state in
            state.waiting -= 1
            guard state.paused, state.waiting <= Self.resumeAt else { return false }
            state.paused = false
            return true
        }
    }
}
