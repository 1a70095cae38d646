// SPDX-License-Identifier: Apache-2.0

import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import SquallCore
import Synchronization

/// Delivers lifecycle events from the outbox to every webhook URL: takes those due (leased, so
/// that on a shared store one node delivers each), POSTs each, signed, to every receiver that
/// does not have it yet, and settles it — delivered when every receiver answered 2xx; else tried
/// again after 1 s, 2 s, 4 s, … up to `webhook-backoff-max`, until `webhook-retry-for` has
/// passed since the event, when it becomes a dead letter.
///
/// Contracts: at most `webhook-concurrency` deliveries are under way, each cut after
/// `webhook-timeout`; nothing of a receiver's answer is read past 64 KiB. An event leaves the
/// outbox only when every receiver answered 2xx (or it is a dead letter): a node killed mid-
/// delivery leaves it leased, and it is delivered again once the lease runs out — at least
/// once; receivers deduplicate by `webhook-id`. Without a store the outbox is memory and an
/// event is tried once: at most once, a failure counted and logged. Delivery never touches a
/// client's path: it runs on its own tasks.
final class WebhookDispatcher: Service, Sendable {
    let outbox: any EventOutbox
    let configuration: WebhookConfiguration
    private let signer: WebhookSigner
    private let metrics: WebhookMetrics
    private let logger: Logger
    /// Events lost before delivery (a full outbox, a failed commit), so far; logged as they grow.
    private let dropped: @Sendable () -> Int
    private let droppedLogged = Mutex<(count: Int, at: ContinuousClock.Instant?)>((0, nil))

    /// How long a taken event is leased: its deliveries' time (one receiver after another), and
    /// some.
    var lease: Duration { configuration.timeout * configuration.urls.count + .seconds(2) }
    /// Batches delivered after a graceful shutdown began, at most.
    static let passesAtShutdown = 8
    /// How often the outbox is looked at when it had nothing due.
    static let idlePoll = Duration.milliseconds(200)

    init(
        outbox: any EventOutbox, configuration: WebhookConfiguration, metrics: WebhookMetrics, dropped: @escaping @Sendable () -> Int = { 0 },
        logger: Logger
    ) {
        self.dropped = dropped
        self.outbox = outbox
        self.configuration = configuration
        self.signer = WebhookSigner(key: configuration.secret)
        self.metrics = metrics
        self.logger = logger
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                if await self.deliverDue() == 0 { try? await Task.sleep(for: Self.idlePoll) }
            }
        }
        // What the shutdown's drain recorded (`disconnected`, `node_shutdown`): a few more
        // passes, each delivery within its timeout. Without a store it would otherwise be lost.
        for _ in 0..<Self.passesAtShutdown where await deliverDue() > 0 {}
    }

    /// Delivers the events due now; how many there were.
    @discardableResult
    private func deliverDue() async -> Int {
        let due: [OutboxEntry]
        do {
            // As many as are delivered at once: every one taken starts now, within its lease.
            due = try await outbox.due(limit: configuration.concurrency, lease: lease)
        } catch {
            logger.warning("cannot read the webhook outbox", metadata: ["error": "\(error)"])
            due = []
        }
        metrics.depth.set(Double(await outbox.depth()))
        logDrops()
        if !due.isEmpty { await deliver(due) }
        return due.count
    }

    /// Says, at most every 10 s, how many events were lost before delivery since it last did.
    private func logDrops() {
        let now = ContinuousClock.now
        let count = dropped()
        let fresh = droppedLogged.withLock { logged -> Int in
            guard count > logged.count, logged.at.map({ now - $0 >= .seconds(10) }) ?? true else { return 0 }
            defer { logged = (count, now) }
            return count - logged.count
        }
        if fresh > 0 { logger.error("\(fresh) webhook event(s) were lost before delivery (\(count) so far): the outbox was full or the store failed") }
    }

    /// Delivers `entries` (at most `webhook-concurrency` of them), all at once.
    private func deliver(_ entries: [OutboxEntry]) async {
        await withTaskGroup(of: Void.self) { group in
            for entry in entries { group.addTask { await self.deliver(entry) } }
        }
    }

    private func deliver(_ entry: OutboxEntry) async {
        var delivered = entry.deliveredTo
        var failure: String?
        for url in configuration.urls where !delivered.contains(url) {
            if let why = await post(entry.event, to: url) {
                failure = "\(url): \(why)"
            } else {
                delivered.insert(url)
            }
        }
        let event = entry.event
        do {
            guard let failure else {
                metrics.delivered.increment()
                return try await outbox.delivered(event.id)
            }
            metrics.failed.increment()
            metrics.recentFailures.add(event.type, failure)
            guard outbox.isDurable else {
                metrics.dropped.increment()
                logger.warning("webhook event dropped (no store: delivered at most once)", metadata: ["type": "\(event.type)", "error": "\(failure)"])
                return
            }
            let next = Date().addingTimeInterval(backoff(after: entry.attempts).inSeconds)
            if next.timeIntervalSince(event.time) > configuration.retryFor.inSeconds {
                metrics.dead.increment()
                logger.error(
                    "webhook event out of retries: a dead letter now", metadata: ["type": "\(event.type)", "id": "\(event.id)", "error": "\(failure)"])
                try await outbox.deadLetter(event.id, reason: failure)
            } else {
                try await outbox.retry(event.id, deliveredTo: delivered, at: next)
            }
        } catch {
            // The lease runs out and the event is taken again: delivered more than once, never lost.
            logger.warning("cannot settle a webhook event", metadata: ["id": "\(event.id)", "error": "\(error)"])
        }
    }

    /// The wait before try `attempts + 2`: 1 s, 2 s, 4 s, … up to `webhook-backoff-max`.
    func backoff(after attempts: Int) -> Duration {
        min(.seconds(1 << min(attempts, 30)), configuration.maxBackoff)
    }

    /// POSTs `event` to `url`; `nil` when it answered 2xx, else why not.
    private func post(_ event: LifecycleEvent, to url: String) async -> String? {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Squall webhooks")
        for (name, value) in signer.headers(id: event.id.uuidString, time: Date(), body: event.body) {
            request.headers.add(name: name, value: value)
        }
        request.body = .bytes(event.body)
        do {
            // The whole answer, body included, within the timeout.
            let status = try await Deadline.run(within: configuration.timeout) { [request, configuration] in
                let response = try await HTTPClient.shared.execute(request, timeout: TimeAmount(configuration.timeout))
                _ = try await response.body.collect(upTo: 64 * 1024)
                return response.status.code
            }
            return (200..<300).contains(status) ? nil : "answered \(status)"
        } catch {
            return "\(String(describing: error).prefix(200))"
        }
    }
}

/// What `/metrics` shows of webhook delivery.
struct WebhookMetrics: Sendable {
    /// Events every receiver has.
    let delivered: Counter
    /// Tries that did not reach every receiver (each retried, or dropped, or a dead letter).
    let failed: Counter
    /// Events out of retries.
    let dead: Counter
    /// Events lost: tried once without a store, or refused by a full outbox.
    let dropped: Counter
    /// Events waiting in the outbox.
    let depth: Gauge
    /// The last failed tries, for the admin page.
    let recentFailures: RecentEvents
}
