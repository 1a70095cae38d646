// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import SquallCore
import Synchronization

/// Makes the lifecycle events webhooks report — `connected`, `disconnected` (with its cause),
/// `subscribed`, `unsubscribed`, `published` — and records them in the outbox, as they happen:
/// the hub tells it of subscriptions and messages (``HubObserver``), connections and streams
/// of their opening and end.
///
/// Contracts: recording only queues (it runs under the hub's channel locks); an event the
/// configuration filters out is never made; one the outbox refuses (full, or closed) is counted
/// in ``dropped`` (the dispatcher logs drops, away from the locks). With a durable store
/// `published` events are the store's, written in the message's own transaction.
public final class LifecycleEvents: HubObserver {
    let configuration: WebhookConfiguration
    let outbox: any EventOutbox
    private let node: UUID
    private let droppedTotal = Atomic<Int>(0)

    init(configuration: WebhookConfiguration, outbox: any EventOutbox, node: UUID) {
        self.configuration = configuration
        self.outbox = outbox
        self.node = node
        if outbox.isDurable, configuration.sends("published", namespace: nil) {
            let events = self
            outbox.recordPublished { message in events.publishedEvent(message) }
        }
        if configuration.sends("presence_expired", namespace: nil) {
            outbox.recordExpiredPresence(namespaces: configuration.namespaces)
        }
    }

    /// Events lost so far: refused by the outbox, or lost by the store after it took them.
    public var dropped: Int { droppedTotal.load(ordering: .relaxed) + outbox.droppedEvents }

    // MARK: - Connections

    /// A WebSocket connection or SSE stream was let in.
    func connected(client: UUID, transport: String, user: String?, address: IPAddress?) {
        guard configuration.sends("connected", namespace: nil) else { return }
        var data = JSONText.Object()
        data.string("address", address?.description)
        data.string("client", client.uuidString)
        data.string("node", node.uuidString)
        data.string("transport", transport)
        data.string("user", user)
        record(LifecycleEvent(type: "connected", namespace: nil, data: data.finish()))
    }

    /// A WebSocket connection or SSE stream ended, for `cause`, with `disconnect` if the server
    /// ended it.
    func disconnected(client: UUID, transport: String, user: String?, cause: DisconnectCause, disconnect: Disconnect?) {
        guard configuration.sends("disconnected", namespace: nil) else { return }
        var data = JSONText.Object()
        data.string("cause", cause.rawValue)
        data.string("client", client.uuidString)
        data.integer("code", disconnect?.code)
        data.string("node", node.uuidString)
        data.string("reason", disconnect?.reason)
        data.string("transport", transport)
        data.string("user", user)
        record(LifecycleEvent(type: "disconnected", namespace: nil, data: data.finish()))
    }

    // MARK: - The hub's

    public func subscription(_ change: PresenceChange) {
        let (type, channel, member) =
            switch change {
            case .join(let channel, let member): ("subscribed", channel, member)
            case .leave(let channel, let member): ("unsubscribed", channel, member)
            }
        let namespace = namespace(channel)
        guard configuration.sends(type, namespace: namespace) else { return }
        var data = JSONText.Object()
        data.string("channel", channel.rawValue)
        data.string("client", member.id.uuidString)
        data.string("node", node.uuidString)
        data.string("transport", member.transport)
        data.string("user", member.user)
        record(LifecycleEvent(type: type, namespace: namespace, data: data.finish()))
    }

    public func published(_ message: Message) {
        // A store writes the event with the message; memory has none to.
        guard !outbox.isDurable, let event = publishedEvent(message) else { return }
        record(event)
    }

    /// The `published` event of `message`, if the configuration sends it.
    func publishedEvent(_ message: Message) -> LifecycleEvent? {
        let namespace = namespace(message.channel)
        guard configuration.sends("published", namespace: namespace) else { return nil }
        var data = JSONText.Object()
        data.string("channel", message.channel.rawValue)
        data.string("epoch", message.position.epoch)
        data.string("id", message.id.text)
        data.integer("offset", message.offset)
        data.string("publisher", message.publisher?.text)
        data.integer("time", message.unixMilliseconds)
        return LifecycleEvent(type: "published", time: message.time, namespace: namespace, data: data.finish())
    }

    /// The namespace a channel's events are filtered by: its name's part before `:`, whether or
    /// not the namespace is configured (`""` without one).
    private func namespace(_ channel: ChannelName) -> String {
        guard let colon = channel.rawValue.firstIndex(of: ":") else { return "" }
        return String(channel.rawValue[..<colon])
    }

    private func record(_ event: LifecycleEvent) {
        do {
            try outbox.record([event])
        } catch {
            droppedTotal.add(1, ordering: .relaxed)
        }
    }
}
