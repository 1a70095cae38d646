// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import Prometheus
import SquallCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// What `/metrics` tells Prometheus, in its text format (swift-prometheus's registry, one per
/// server: no process-wide `MetricsSystem` bootstrap, so that servers embedded side by side keep
/// their own).
///
/// Contracts: nothing here runs per delivery. Handshakes are counted as they are decided; the
/// hub's message, delivery and byte totals (kept per message), the endings by cause (kept per
/// ending) and the gauges — connections by transport, channels, waiting polls, the process's
/// memory, descriptors and CPU — are read when Prometheus scrapes.
final class ServerMetrics: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let handshakes: Counter
    private let messages: Counter
    private let deliveries: Counter
    private let deliveredBytes: Counter
    private let connections: Gauge
    private let channels: Gauge
    private let waitingPolls: Gauge
    private let residentBytes: Gauge
    private let openDescriptors: Gauge
    private let cpuSeconds: Counter
    /// Refusals by error code, made once: a refusal is counted without the registry's lock.
    private let refusals: [ErrorCode: Counter]
    /// Webhook deliveries by outcome, and the outbox's depth.
    let webhooks: WebhookMetrics
    /// The last refusals — of HTTP requests and upgrades — for the admin page.
    let recentRefusals = RecentEvents()
    private let acknowledgements: DurationHistogram
    private let commits: DurationHistogram
    private let commitErrors: Counter
    private let httpRefusals: [ErrorCode: Counter]
    /// Hook calls as last exported, keyed `HOOK OUTCOME`.
    private let exportedHooks = Mutex<[String: Int]>([:])
    /// The totals as last exported: a Prometheus counter only goes up by what came since.
    private let exported = Mutex<(messages: Int, deliveries: Int, bytes: Int, cpu: Double, droppedEvents: Int)>((0, 0, 0, 0, 0))
    /// Connections' and streams' endings by cause, made once, so that every cause reads 0 from the start.
    private let disconnectionCounters: [DisconnectCause: Counter]
    /// Endings by cause as last exported.
    private let exportedDisconnections = Mutex<[DisconnectCause: Int]>([:])

    init() {
        handshakes = registry.makeCounter(descriptor: .named("squall_websocket_handshakes_total", Self.handshakeHelp), labels: [("result", "accepted")])
        messages = registry.makeCounter(descriptor: .named("squall_messages_total", "Messages that joined this node's channel logs."))
        deliveries = registry.makeCounter(descriptor: .named("squall_deliveries_total", "Messages handed to this node's subscribers, one per subscriber."))
        deliveredBytes = registry.makeCounter(
            descriptor: .named(
                "squall_delivered_bytes_total",
                "Payload bytes handed to this node's subscribers: each message's size once per subscriber, before framing and compression."))
        connections = registry.makeGauge(descriptor: .named("squall_websocket_connections", "Open WebSocket connections."))
        channels = registry.makeGauge(descriptor: .named("squall_channels", "Channels this node holds, opening ones included."))
        waitingPolls = registry.makeGauge(descriptor: .named("squall_long_polls_waiting", "Long polls parked waiting for a message."))
        residentBytes = registry.makeGauge(descriptor: .named("process_resident_memory_bytes", "Resident memory size in bytes."))
        openDescriptors = registry.makeGauge(descriptor: .named("process_open_fds", "Open file descriptors."))
        cpuSeconds = registry.makeCounter(descriptor: .named("process_cpu_seconds_total", "User and system CPU time spent, in seconds."))
        let latencies: [Duration] = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5),
        ]
        acknowledgements = registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(
                namespace: "squall", metricName: "publish_acknowledgement", unitName: "seconds",
                helpText: "From a publish's arrival to its answer (with a store: its commit)."),
            buckets: latencies)
        commits = registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(
                namespace: "squall", metricName: "store_commit", unitName: "seconds", helpText: "How long each store commit (a batch of messages) took."),
            buckets: latencies)
        commitErrors = registry.makeCounter(descriptor: .named("squall_store_commit_errors_total", "Store commits that failed: their messages were refused."))
        httpRefusals = Dictionary(
            uniqueKeysWithValues: ErrorCode.builtIn.map { [registry] code in
                (code, registry.makeCounter(descriptor: .named("squall_http_refusals_total", Self.refusalHelp), labels: [("reason", code.description)]))
            })
        let webhookHelp = "Webhook events delivered to every receiver, tries that failed, events out of retries, and events lost."
        webhooks = WebhookMetrics(
            delivered: registry.makeCounter(descriptor: .named("squall_webhook_events_total", webhookHelp), labels: [("outcome", "delivered")]),
            failed: registry.makeCounter(descriptor: .named("squall_webhook_events_total", webhookHelp), labels: [("outcome", "failed")]),
            dead: registry.makeCounter(descriptor: .named("squall_webhook_events_total", webhookHelp), labels: [("outcome", "dead")]),
            dropped: registry.makeCounter(descriptor: .named("squall_webhook_events_total", webhookHelp), labels: [("outcome", "dropped")]),
            depth: registry.makeGauge(descriptor: .named("squall_webhook_outbox_events", "Webhook events waiting for delivery.")),
            recentFailures: RecentEvents())
        disconnectionCounters = Dictionary(
            uniqueKeysWithValues: DisconnectCause.allCases.map { [registry] cause in
                (cause, registry.makeCounter(descriptor: .named("squall_disconnections_total", Self.disconnectionsHelp), labels: [("cause", cause.rawValue)]))
            })
        refusals = Dictionary(
            uniqueKeysWithValues: ErrorCode.builtIn.map { [registry] code in
                (
                    code,
                    registry.makeCounter(
                        descriptor: .named("squall_websocket_handshakes_total", Self.handshakeHelp),
                        labels: [("result", "refused"), ("reason", code.description)])
                )
            })
    }

    private static let handshakeHelp = "WebSocket upgrades, accepted or refused (by the refusal's error code)."
    private static let refusalHelp = "HTTP requests answered with an error, by its code (origin, auth, limits, hooks, bad input)."
    private static let hookHelp = "Calls of the backend's hooks, by hook and outcome."
    private static let connectionsHelp = "Open connections and streams by transport: ws, msg, websocket (an application's mount), sse."
    private static let disconnectionsHelp =
        "WebSocket connections and SSE streams that ended, by cause (client_close, slow_consumer, ping_timeout, kicked, token_expired, …)."

    /// An HTTP request answered with `code`.
    func refusedRequest(_ code: ErrorCode) {
        (httpRefusals[code] ?? registry.makeCounter(descriptor: .named("squall_http_refusals_total", Self.refusalHelp), labels: [("reason", code.description)]))
            .increment()
    }

    /// A publish answered after `duration`.
    func acknowledged(after duration: Duration) {
        acknowledgements.record(duration)
    }

    /// A store commit of `messages` took `duration`.
    func committed(after duration: Duration) {
        commits.record(duration)
    }

    /// A store commit failed.
    func commitFailed() {
        commitErrors.increment()
    }

    /// An upgrade accepted.
    func accepted() {
        handshakes.increment()
    }

    /// An upgrade request refused with `code` (`origin_not_allowed`, `unauthorized`, …).
    func refused(_ code: ErrorCode) {
        recentRefusals.add(code.description, "WebSocket upgrade")
        let counter =
            refusals[code]
            ?? registry.makeCounter(
                descriptor: .named("squall_websocket_handshakes_total", Self.handshakeHelp), labels: [("result", "refused"), ("reason", code.description)])
        counter.increment()
    }

    /// The text Prometheus scrapes, with the totals and gauges read now: `connections` by
    /// transport, and the endings of connections and streams by cause so far.
    func render(
        hub: Hub, connections byTransport: [String: Int], disconnections: Disconnections, events: LifecycleEvents?, hooks: BackendHooks
    ) -> ByteBuffer {
        let process = Self.process()
        // Totals are read under the lock that records what was exported, so that two scrapes at
        // once cannot export the same calls twice.
        let newHookCalls = exportedHooks.withLock { exported in
            let hookCounts = hooks.counts
            defer { exported = hookCounts }
            return hookCounts.map { ($0.key, $0.value - exported[$0.key, default: 0]) }.filter { $0.1 > 0 }
        }
        for (key, count) in newHookCalls {
            let parts = key.split(separator: " ")
            registry.makeCounter(
                descriptor: .named("squall_hook_calls_total", Self.hookHelp), labels: [("hook", String(parts[0])), ("outcome", String(parts[1]))]
            )
            .increment(by: Int64(count))
        }
        let newDisconnections = exportedDisconnections.withLock { exported in
            let ended = disconnections.totals
            defer { exported = ended }
            return ended.map { ($0.key, $0.value - exported[$0.key, default: 0]) }.filter { $0.1 > 0 }
        }
        for (cause, count) in newDisconnections { disconnectionCounters[cause]?.increment(by: Int64(count)) }
        for (transport, count) in byTransport {
            registry.makeGauge(descriptor: .named("squall_connections", Self.connectionsHelp), labels: [("transport", transport)]).set(Double(count))
        }
        let (newMessages, newDeliveries, newBytes, newCPU, newDropped) = exported.withLock { exported -> (Int, Int, Int, Double, Int) in
            let now = (
                messages: hub.messageCount, deliveries: hub.deliveryCount, bytes: hub.deliveredByteCount, cpu: process.cpuSeconds,
                droppedEvents: events?.dropped ?? 0
            )
            defer { exported = now }
            return (
                now.messages - exported.messages, now.deliveries - exported.deliveries, now.bytes &- exported.bytes,
                max(0, now.cpu - exported.cpu), now.droppedEvents - exported.droppedEvents
            )
        }
        if newDropped > 0 { webhooks.dropped.increment(by: Int64(newDropped)) }
        if newMessages > 0 { messages.increment(by: Int64(newMessages)) }
        if newDeliveries > 0 { deliveries.increment(by: Int64(newDeliveries)) }
        if newBytes > 0 { deliveredBytes.increment(by: Int64(newBytes)) }
        if newCPU > 0 { cpuSeconds.increment(by: newCPU) }
        connections.set(Double(byTransport.filter { $0.key != "sse" }.values.reduce(0, +)))
        channels.set(Double(hub.channelCount))
        waitingPolls.set(Double(hub.waitingPolls))
        residentBytes.set(process.residentBytes)
        openDescriptors.set(process.descriptors)
        return ByteBuffer(bytes: registry.emitToBuffer())
    }

    /// The process's resident memory (`/proc/self/statm`), open descriptors (`/proc/self/fd`)
    /// and CPU time (`getrusage`); 0 where the system does not say.
    private static func process() -> (residentBytes: Double, descriptors: Double, cpuSeconds: Double) {
        var resident = 0.0
        if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
            let pages = statm.split(separator: " ").dropFirst().first.flatMap({ Double($0) })
        {
            resident = pages * Double(sysconf(Int32(_SC_PAGESIZE)))
        }
        let descriptors = Double((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0)
        var usage = rusage()
        #if canImport(Glibc)
            getrusage(RUSAGE_SELF.rawValue, &usage)
        #else
            getrusage(RUSAGE_SELF, &usage)
        #endif
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        return (resident, descriptors, cpu)
    }
}

extension MetricNameDescriptor {
    /// A metric named in full, as Prometheus shows it (`squall_messages_total`), with its help.
    fileprivate static func named(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}
