// SPDX-License-Identifier: Apache-2.0

/// A store could not do what it was asked: the database is unreachable, full, broken or too
/// slow to answer in time. Transports answer a request that fails so with `store_unavailable`
/// (HTTP 503).
public struct StoreError: Error, Sendable, CustomStringConvertible {
    /// What the store says went wrong, for logs; not for clients.
    public let description: String

    /// An error saying `description`.
    public init(_ description: String) {
        self.description = description
    }
}
