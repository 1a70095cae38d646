// SPDX-License-Identifier: Apache-2.0

import Foundation

/// Lifecycle webhooks: where events are POSTed, signed as the Standard Webhooks specification
/// says, which events, and how long delivery keeps trying.
///
/// Contracts: each event reaches each URL at least once while it is within ``retryFor`` (with a
/// store; at most once without one), tried again after 1 s, 2 s, 4 s, … up to ``maxBackoff``
/// between tries; then it becomes a dead letter. At most ``concurrency`` deliveries are under
/// way at once, each given ``timeout``.
public struct WebhookConfiguration: Sendable, Equatable {
    /// Every event type there is.
    public static let eventTypes = ["connected", "disconnected", "subscribed", "unsubscribed", "published", "presence_expired"]

    /// The receivers.
    public var urls: [String]
    /// The HMAC-SHA256 key, from `whsec_` + base64.
    public var secret: [UInt8]
    /// The event types sent; `nil` for all.
    public var events: Set<String>?
    /// The namespaces whose channels' events are sent (`""` is the default one); `nil` for all.
    /// Connection events, of no channel, are always sent.
    public var namespaces: Set<String>?
    /// How long one delivery may take. Default 10 s.
    public var timeout: Duration
    /// How long an event is retried before it becomes a dead letter. Default 24 h.
    public var retryFor: Duration
    /// Longest wait between tries. Default 5 min.
    public var maxBackoff: Duration
    /// Most deliveries under way at once. Default 16.
    public var concurrency: Int

    public init(
        urls: [String], secret: [UInt8], events: Set<String>? = nil, namespaces: Set<String>? = nil, timeout: Duration = .seconds(10),
        retryFor: Duration = .seconds(86_400), maxBackoff: Duration = .seconds(300), concurrency: Int = 16
    ) {
        self.urls = urls
        self.secret = secret
        self.events = events
        self.namespaces = namespaces
        self.timeout = timeout
        self.retryFor = retryFor
        self.maxBackoff = maxBackoff
        self.concurrency = concurrency
    }

    /// The key a `whsec_…` secret stands for; `nil` when it is not one.
    public static func key(fromSecret text: String) -> [UInt8]? {
        guard text.hasPrefix("whsec_"), let key = Data(base64Encoded: String(text.dropFirst(6))), key.count >= 16 else { return nil }
        return Array(key)
    }

    /// Whether events of `type` on `namespace` (`nil`: no channel) are sent.
    public func sends(_ type: String, namespace: String?) -> Bool {
        guard events?.contains(type) ?? true else { return false }
        guard let namespace, let namespaces else { return true }
        return namespaces.contains(namespace)
    }
}
