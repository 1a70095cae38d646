// SPDX-License-Identifier: Apache-2.0

/// What a store tells about its commits, for `/metrics`: how long each took, and which failed.
///
/// Contracts: called on the store's own thread or loop, once per commit (a batch of messages),
/// never per message or delivery; it must only record (never wait).
public protocol StoreObserver: Sendable {
    /// A commit of `messages` messages took `duration`.
    func committed(messages: Int, after duration: Duration)
    /// A commit failed: its messages were not stored.
    func commitFailed()
}
