// SPDX-License-Identifier: Apache-2.0

/// Runs work that talks to a peer — a hook's backend, a webhook's receiver — within a deadline
/// that covers all of it: async-http-client's own timeout ends at the response's head, and a
/// peer that then trickles its body would hold the call for as long as it likes.
enum Deadline {
    /// The peer took longer than it was given.
    struct Exceeded: Error, CustomStringConvertible {
        let limit: Duration
        var description: String { "no answer within \(limit)" }
    }

    /// `operation`'s result, or ``Exceeded`` once `limit` has passed (the operation is then
    /// cancelled, which closes its request).
    static func run<T: Sendable>(within limit: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await operation() }
            group.addTask {
                try await Task.sleep(for: limit)
                throw Exceeded(limit: limit)
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { throw Exceeded(limit: limit) }
            return first
        }
    }
}
