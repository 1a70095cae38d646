// SPDX-License-Identifier: Apache-2.0

import DequeModule
import Foundation
import Synchronization

/// Lifecycle events in memory, for a server without a store: a bounded queue delivered at most
/// once — an event is handed out once, and one that does not reach its receivers, or that is
/// in the queue when the process stops, is lost.
public final class MemoryEventOutbox: EventOutbox {
    private struct State {
        var events = Deque<LifecycleEvent>()
        var ids = Set<UUID>()
        var published: (@Sendable (Message) -> LifecycleEvent?)?
    }

    /// Most events that wait.
    public let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    public var isDurable: Bool { false }

    public func record(_ events: [LifecycleEvent]) throws(StoreError) {
        let full = state.withLock { state in
            let fresh = events.filter { !state.ids.contains($0.id) }
            guard state.events.count + fresh.count <= capacity else { return true }
            for event in fresh {
                state.events.append(event)
                state.ids.insert(event.id)
            }
            return false
        }
        if full { throw StoreError("the event queue holds \(capacity) events") }
    }

    public func recordPublished(_ event: @escaping @Sendable (Message) -> LifecycleEvent?) {
        state.withLock { $0.published = event }
    }

    /// The event a published message makes, if ``recordPublished(_:)`` was given a maker: the
    /// hub's observer records it, as no store commits the message.
    public func published(_ message: Message) -> LifecycleEvent? {
        state.withLock { $0.published }?(message)
    }

    public func due(limit: Int, lease: Duration) async throws(StoreError) -> [OutboxEntry] {
        state.withLock { state in
            var taken: [OutboxEntry] = []
            while taken.count < limit, let event = state.events.popFirst() {
                state.ids.remove(event.id)
                taken.append(OutboxEntry(event: event, attempts: 0, deliveredTo: []))
            }
            return taken
        }
    }

    public func delivered(_ id: UUID) async throws(StoreError) {}

    /// At most once: an event is not tried again.
    public func retry(_ id: UUID, deliveredTo: Set<String>, at retryAt: Date) async throws(StoreError) {}

    public func deadLetter(_ id: UUID, reason: String) async throws(StoreError) {}

    public func depth() async -> Int { state.withLock { $0.events.count } }
}
