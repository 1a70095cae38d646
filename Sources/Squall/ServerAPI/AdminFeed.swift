// SPDX-License-Identifier: Apache-2.0

import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle
import SquallCore

/// `GET /admin/events`: what the admin page shows, as Server-Sent Events — a `snapshot` event a
/// second: this node, connections by transport, the busiest channels with their subscribers
/// and message rates, and the last refusals and webhook failures. Behind the API key, like the
/// server API (the page reads it with `fetch`, which can send the key).
///
/// Contracts: one pass over the pool and the channel table a second per open feed; at most
/// ``maxChannels`` channels listed; the feed ends with the client or the server's shutdown.
struct AdminFeed: Sendable {
    /// Most channels a snapshot lists, the most subscribed first.
    static let maxChannels = 50

    let commands: ServerCommands
    let streams: OpenStreams
    let refusals: RecentEvents
    let webhookFailures: RecentEvents
    /// Webhook events waiting, when webhooks are on.
    let webhooksWaiting: (@Sendable () async -> Int)?

    func add(to router: Router<SquallRequestContext>, gate: APIGate) {
        router.group("admin").add(middleware: gate).get("events") { _, _ in
            var headers: HTTPFields = [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-cache"]
            headers[HTTPField.Name("X-Accel-Buffering")!] = "no"  // trap-ok: a valid field name, written here
            return Response(status: .ok, headers: headers, body: ResponseBody { writer in try await stream(to: &writer) })
        }
    }

    private func stream(to writer: inout any ResponseBodyWriter) async throws {
        var offsets: [ChannelName: UInt64] = [:]
        var last = ContinuousClock.now
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let now = ContinuousClock.now
            let seconds = max(0.001, Double((now - last).components.attoseconds) / 1e18 + Double((now - last).components.seconds))
            last = now
            let channels = commands.hub.channels().sorted { $0.subscribers > $1.subscribers }.prefix(Self.maxChannels)
            var listed: [ByteBuffer] = []
            var seen: [ChannelName: UInt64] = [:]
            for use in channels {
                let before = offsets[use.channel] ?? use.lastOffset
                seen[use.channel] = use.lastOffset
                var channel = JSONText.Object()
                channel.string("channel", use.channel.rawValue)
                let rate = min(Double(use.lastOffset >= before ? use.lastOffset - before : 0) / seconds, 1e12)
                channel.integer("rate", Int(rate.rounded()))  // trap-ok: held below 1e12
                channel.integer("subscribers", use.subscribers)
                listed.append(channel.finish())
            }
            offsets = seen
            var connections = JSONText.Object()
            let counts = commands.pool.countsByTransport
            connections.integer("msg", counts["msg", default: 0])
            connections.integer("sse", streams.count)
            connections.integer("websocket", counts["websocket", default: 0])
            connections.integer("ws", counts["ws", default: 0])
            let node = commands.stats()
            var nodeJSON = JSONText.Object()
            nodeJSON.integer("channels", node.channels)
            nodeJSON.integer("connections", node.connections)
            nodeJSON.integer("deliveries", node.deliveries)
            nodeJSON.string("id", commands.node.uuidString)
            nodeJSON.integer("messages", node.messages)
            nodeJSON.integer("uptime", node.uptime)
            var webhooks = JSONText.Object()
            webhooks.array("failures", Self.json(webhookFailures))
            webhooks.integer("waiting", await webhooksWaiting?())
            var snapshot = JSONText.Object()
            snapshot.array("channels", listed)
            snapshot.raw("connections", json: connections.finish())
            snapshot.raw("node", json: nodeJSON.finish())
            snapshot.integer("polls", commands.hub.waitingPolls)
            snapshot.array("refusals", Self.json(refusals))
            snapshot.raw("webhooks", json: webhooks.finish())
            try await writer.write(SSE.event("snapshot", data: snapshot.finish()))
            try await Task.sleep(for: .seconds(1))
        }
        try await writer.finish(nil)
    }

    private static func json(_ events: RecentEvents) -> [ByteBuffer] {
        events.newestFirst.map { entry in
            var object = JSONText.Object()
            object.string("detail", entry.detail)
            object.string("kind", entry.kind)
            object.string("time", LifecycleEvent.timestamp(entry.time))
            return object.finish()
        }
    }
}
