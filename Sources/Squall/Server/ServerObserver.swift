// SPDX-License-Identifier: Apache-2.0

import SquallCore

/// What the hub and the store tell as they work, passed on: subscriptions and messages to the
/// lifecycle events (when webhooks are on), publish and commit times to `/metrics`.
///
/// Contracts: the hub's and store's — it only records and queues.
struct ServerObserver: HubObserver, StoreObserver {
    let metrics: ServerMetrics
    let events: LifecycleEvents?

    func subscription(_ change: PresenceChange) {
        events?.subscription(change)
    }

    func published(_ message: Message) {
        events?.published(message)
    }

    func acknowledged(_ result: Result<Message, PublishError>, after duration: Duration) {
        metrics.acknowledged(after: duration)
    }

    func committed(messages: Int, after duration: Duration) {
        metrics.committed(after: duration)
    }

    func commitFailed() {
        metrics.commitFailed()
    }
}
