// SPDX-License-Identifier: Apache-2.0

import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle
import SquallCore

/// Polling, and the plain HTTP routes of a channel, over the channel's log in the ``Hub``:
///
/// | route | what |
/// |---|---|
/// | `GET /channels/{name}/messages` | short poll (`wait=0`) and long poll (`wait` ≤ the configured maximum) |
/// | `POST /channels/{name}/messages` | publish the request body (`Idempotency-Key` makes a retry return the first) |
/// | `GET /channels/{name}/history` | the latest retained messages |
/// | `GET /channels/{name}/presence` | who is subscribed |
///
/// Polling is stateless: the position travels with each request, so it needs no session and no
/// sticky load balancing.
struct PollingTransport: Sendable {
    /// Most messages one poll or history request returns; `limit` defaults to it.
    static let maxLimit = 1000

    let hub: Hub
    let configuration: SquallConfiguration
    /// Rates, keys and namespaces, read per request.
    let policy: LivePolicy
    let departures: ClientDepartures
    /// One bucket per client address for publishes (``RateLimit``).
    let publishes: AddressRateLimiter
    /// One bucket per client address and namespace with a publish rate of its own.
    let namespacePublishes: NamespaceRateLimiters
    /// The subscribe rate's buckets, per client address, which a request on a channel whose
    /// log must come from the store is charged to.
    let opens: AddressRateLimiter

    init(hub: Hub, configuration: SquallConfiguration, policy: LivePolicy, departures: ClientDepartures, opens: AddressRateLimiter) {
        self.hub = hub
        self.configuration = configuration
        self.policy = policy
        self.departures = departures
        self.publishes = AddressRateLimiter(rate: { policy.current.publishRate }, addresses: configuration.clientAddresses)
        self.namespacePublishes = NamespaceRateLimiters(policy: policy, addresses: configuration.clientAddresses)
        self.opens = opens
    }

    /// Who the request is from (its token) under the current policy.
    private func identify(_ request: Request) throws(APIError) -> (AccessPolicy, ClientIdentity?) {
        let access = policy.current.access
        let token = Credentials.token(query: request.uri.queryParameters, authorization: request.headers[.authorization])
        return (access, try policy.identify(token, in: access))
    }

    func add(to router: Router<SquallRequestContext>) {
        let channel = router.group("channels/{name}")
        channel.get("messages", use: poll)
        channel.post("messages", use: publish)
        channel.get("history", use: history)
        channel.get("presence", use: presence)
    }

    // MARK: - Polling and history

    @Sendable func poll(_ request: Request, context: SquallRequestContext) async throws -> Response {
        let channel = try APIError.channel(context.parameters.get("name"))
        let (since, limit, wait) = try Self.pollQuery(request.uri.queryParameters, maxWait: configuration.longPollWait)
        // A poll is how a polling client subscribes: the subscribe rule decides. Resuming from a
        // position is part of subscribing; the backlog a poll without one gets is history, which
        // a client the history rule refuses does not get: its poll starts from now.
        let (access, identity) = try identify(request)
        try access.authorizeSubscribe(channel, by: identity, subscriptionToken: Credentials.subscriptionToken(query: request.uri.queryParameters))
        let backlog = since != nil || (try? access.authorizeHistory(channel, by: identity, subscribed: false)) != nil
        let client = context.client(of: request, configuration.clientAddresses)
        try chargeOpening(channel, by: client)
        // Each poll subscribes anew: the subscribe hook decides each.
        _ = try await policy.hooks.check(Self.hookCall(.subscribe, request, client: client, identity: identity, channel: channel), in: access)
        let hub = self.hub
        let budget = ReadBudget.envelopes(maxBytes: configuration.maxReplyBytes)
        // A shutdown, or the client going away, ends the wait at once: the poll is answered,
        // empty, rather than cut off, and a departed client's socket is not held for the wait.
        let departure = departures[context.socket]
        let history = await cancelWhenGracefulShutdown {
            await departure.cancelling { () async -> Result<History, StoreError> in
                do throws(StoreError) {
                    return .success(try await hub.poll(channel, since: since, limit: limit, wait: wait, budget: budget, backlog: backlog))
                } catch {
                    return .failure(error)
                }
            }
        }
        guard case .success(let history) = history else { throw APIError.channelUnavailable }
        return Self.json(ProtocolReply.history(history, type: nil))
    }

    @Sendable func history(_ request: Request, context: SquallRequestContext) async throws -> Response {
        let channel = try APIError.channel(context.parameters.get("name"))
        let limit = try Self.limit(request.uri.queryParameters)
        let (access, identity) = try identify(request)
        try access.authorizeHistory(channel, by: identity, subscribed: false)
        try chargeOpening(channel, by: context.client(of: request, configuration.clientAddresses))
        let history: History
        do {
            history = try await hub.history(channel, limit: limit, budget: ReadBudget.envelopes(maxBytes: configuration.maxReplyBytes))
        } catch {
            throw APIError.channelUnavailable
        }
        return Self.json(ProtocolReply.history(history, type: nil))
    }

    /// A request that would open `channel` from the store — a poll, a history read, a publish —
    /// takes a token from its client's subscribe bucket: over the rate it is refused (429)
    /// before the store is asked.
    private func chargeOpening(_ channel: ChannelName, by client: @autoclosure () -> IPAddress?) throws(APIError) {
        guard hub.opensFromStore(channel) else { return }
        try opens.charge(client(), action: "opened channels")
    }

    @Sendable func presence(_ request: Request, context: SquallRequestContext) async throws -> Response {
        let channel = try APIError.channel(context.parameters.get("name"))
        let after = try request.uri.queryParameters["after"].map { text throws(APIError) in
            guard let id = UUID(uuidString: String(text)) else { throw APIError.invalidParameter("after", "a client id from an earlier page") }
            return id
        }
        let (access, identity) = try identify(request)
        try access.authorizePresence(channel, by: identity, subscribed: false)
        let namespace = access.namespace(of: channel)
        guard namespace.options.presence else {
            throw APIError.permissionDenied(namespace: namespace.name, rule: "presence: false", "presence is off here")
        }
        let page = hub.presence(channel, after: after, maxBytes: configuration.maxReplyBytes)
        return Self.json(ProtocolReply.presence(page, type: nil))
    }

    // MARK: - Publishing

    /// The body is the message: binary when the content type is `application/octet-stream`,
    /// text otherwise (it must then be UTF-8). `curl -d` and HTML forms send text.
    @Sendable func publish(_ request: Request, context: SquallRequestContext) async throws -> Response {
        let channel = try APIError.channel(context.parameters.get("name"))
        let idempotencyKey = try Self.idempotencyKey(request.headers[Self.idempotencyKeyField])
        let (access, identity) = try identify(request)
        let client = context.client(of: request, configuration.clientAddresses)
        let maxSize = try admitPublish(to: channel, by: identity, in: access, from: client)
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: maxSize)
        } catch is NIOTooManyBytesError {
            throw APIError.messageTooLarge(limit: maxSize)
        }
        var payload = try Self.payload(body, contentType: request.headers[.contentType])
        var call = Self.hookCall(.publish, request, client: client, identity: identity, channel: channel)
        call.payload = payload
        if let replaced = try await policy.hooks.check(call, in: access)?.payload {
            payload = replaced
        }
        let message: Message
        do {
            message = try await hub.publish(payload, to: channel, idempotencyKey: idempotencyKey)
        } catch {
            throw APIError(error)
        }
        return Self.json(ProtocolReply.published(message, type: nil), status: .created)
    }

    // MARK: - Helpers

    /// The `Idempotency-Key` field's value, checked; several fields come joined with ", ".
    static func idempotencyKey(_ text: String?) throws(APIError) -> IdempotencyKey? {
        try text.map { text throws(APIError) in
            guard let key = try? IdempotencyKey(text) else {
                throw APIError.invalidParameter("Idempotency-Key", IdempotencyKey.requirement)
            }
            return key
        }
    }

    /// What a publish to `channel` must pass before its body is read: the namespace's publish
    /// rule, the publish rate, the namespace's rate, the opening rate.
    /// - Returns: the most bytes its body may have.
    func admitPublish(to channel: ChannelName, by identity: ClientIdentity?, in access: AccessPolicy, from client: IPAddress?) throws(APIError)
        -> Int
    {
        try access.authorizePublish(channel, by: identity, subscribed: false)
        let namespace = access.namespace(of: channel)
        try publishes.charge(client, action: "published")
        try namespacePublishes.charge(namespace.name, client)
        try chargeOpening(channel, by: client)
        return min(configuration.maxMessageSize, namespace.options.maxMessageSize ?? .max)
    }

    /// The message a request body makes: binary when the content type is
    /// `application/octet-stream`, else text, which must be UTF-8. A copy of its own: the body
    /// may be a slice of a larger read buffer, which the log would otherwise keep alive for the
    /// retention age.
    static func payload(_ body: ByteBuffer, contentType: String?) throws(APIError) -> Payload {
        var bytes = ByteBufferAllocator().buffer(capacity: body.readableBytes)
        bytes.writeImmutableBuffer(body)
        guard !isBinary(contentType) else { return .binary(bytes) }
        guard String(validating: bytes.readableBytesView, as: UTF8.self) != nil else {
            throw APIError(.invalidUTF8, message: "a text body must be UTF-8; send binary as application/octet-stream")
        }
        return .text(utf8: bytes)
    }

    /// What the backend's hook is told about an HTTP request.
    static func hookCall(
        _ kind: HookConfiguration.Kind, _ request: Request, client: IPAddress?, identity: ClientIdentity?, channel: ChannelName
    ) -> BackendHooks.Call {
        BackendHooks.Call(
            kind: kind, client: UUID.random(), transport: "http", address: client, user: identity?.presenceUser, channel: channel,
            headers: request.headers.map { ($0.name.canonicalName, $0.value) })
    }

    private static let idempotencyKeyField = HTTPField.Name("Idempotency-Key")!  // trap-ok: a valid field name, written here

    /// A poll's `since`, `limit` and `wait`, each checked; `wait` defaults to, and is cut to,
    /// `maxWait`.
    static func pollQuery(_ query: Parameters, maxWait: Duration) throws(APIError) -> (since: StreamPosition?, limit: Int, wait: Duration) {
        let since = try APIError.position(query["since"].map(String.init))
        let limit = try limit(query)
        guard let text = query["wait"] else { return (since, limit, maxWait) }
        guard let seconds = Double(String(text)), seconds >= 0, seconds.isFinite else {
            throw APIError.invalidParameter("wait", "a number of seconds, 0 or more")
        }
        return (since, limit, Duration(seconds: seconds, atMost: maxWait))
    }

    private static func limit(_ query: Parameters) throws(APIError) -> Int {
        guard let text = query["limit"] else { return 100 }
        guard let limit = Int(String(text)), (1...maxLimit).contains(limit) else {
            throw APIError.invalidParameter("limit", "an integer from 1 to \(maxLimit)")
        }
        return limit
    }

    private static func isBinary(_ contentType: String?) -> Bool {
        contentType?.lowercased().hasPrefix("application/octet-stream") ?? false
    }

    private static func json(_ body: ByteBuffer, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: body))
    }
}
