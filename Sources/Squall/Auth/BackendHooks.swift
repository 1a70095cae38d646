// SPDX-License-Identifier: Apache-2.0

import AsyncHTTPClient
import Foundation
import NIOCore
import SquallCore
import Synchronization

/// The backend's hooks (``HookConfiguration``), asked over HTTP with async-http-client: Squall
/// POSTs what a client is about to do as JSON and the backend answers whether it may.
///
/// The request: `{"hook", "client", "transport", "address", "user"?, "channel"?, "data"?,
/// "encoding"?, "headers": {name: value}}` — `headers` holds only those the operator listed.
/// The answer, 200 with JSON: `{"result": {…}}` allows, and may give `user`, `info` and
/// `expire_at` (Unix seconds; connect and refresh) or `data` and `encoding` (publish: the message
/// published instead); `{"error": {"code"?, "message"}}` denies, `code` being the close code
/// (4000–4999) a socket is closed with when it must be.
///
/// Contracts: a call never outlives the configured timeout; no more than the configured number
/// of one hook's calls wait at once, and one over that is unavailable at once rather than
/// queued; a backend that cannot be reached, answers late, answers another status or answers
/// something that is not a decision is unavailable, which denies. An answer is read up to
/// ``maxAnswerBytes``.
public final class BackendHooks: Sendable {
    /// What the backend is asked about.
    struct Call: Sendable {
        var kind: HookConfiguration.Kind
        var client: UUID
        var transport: String
        var address: IPAddress?
        var user: String?
        var channel: ChannelName?
        var payload: Payload?
        /// The request's headers; only those the operator listed are sent.
        var headers: [(name: String, value: String)]
    }

    /// What the backend said.
    enum Decision: Sendable {
        case allow(Grant)
        case deny(code: UInt16?, message: String)
        case unavailable(String)
    }

    /// What an allowing answer may give.
    struct Grant: Sendable {
        var user: String?
        var info: RawJSON?
        var expires: Date?
        var payload: Payload?
    }

    /// Most bytes of an answer that are read.
    static let maxAnswerBytes = 64 * 1024

    let configuration: HookConfiguration
    private let maxInfo: RawJSON.Limits
    private let waiting = Mutex<[HookConfiguration.Kind: Int]>([:])
    /// Calls so far by hook and outcome (`allow`, `deny`, `unavailable`), for `/metrics`.
    private let outcomes = Mutex<[String: Int]>([:])

    /// Calls so far, keyed `HOOK OUTCOME`.
    var counts: [String: Int] { outcomes.withLock { $0 } }

    /// Largest message a publish hook may give instead of the client's.
    private let maxMessageSize: Int

    init(_ configuration: HookConfiguration, maxInfo: RawJSON.Limits, maxMessageSize: Int = 1 << 20) {
        self.configuration = configuration
        self.maxInfo = maxInfo
        self.maxMessageSize = maxMessageSize
    }

    /// The URL that decides `kind` for `channel`: a namespace's own subscribe or publish hook,
    /// else the server's; `nil` when none is set.
    func url(_ kind: HookConfiguration.Kind, channel: ChannelName? = nil, in access: AccessPolicy) -> String? {
        let server = configuration.urls[kind]
        guard let channel else { return server }
        let options = access.namespace(of: channel).options
        switch kind {
        case .subscribe: return options.subscribeHook.url(server: server)
        case .publish: return options.publishHook.url(server: server)
        case .connect, .refresh: return server
        }
    }

    /// Asks `call`'s hook, if one is set for its channel, for an HTTP request or a `/ws` reply.
    /// - Returns: what it granted; `nil` when no hook is set.
    /// - Throws: its refusal (403 `hook_denied`, 503 `hook_unavailable`).
    func check(_ call: Call, in access: AccessPolicy) async throws(APIError) -> Grant? {
        guard let url = url(call.kind, channel: call.channel, in: access) else { return nil }
        let decision = await ask(call, at: url)
        if let refusal = decision.refusal { throw refusal }
        guard case .allow(let grant) = decision else { return nil }
        return grant
    }

    /// Asks the hook at `url` about `call`.
    func ask(_ call: Call, at url: String) async -> Decision {
        let decision = await decide(call, at: url)
        let outcome =
            switch decision {
            case .allow: "allow"
            case .deny: "deny"
            case .unavailable: "unavailable"
            }
        outcomes.withLock { $0["\(call.kind.rawValue) \(outcome)", default: 0] += 1 }
        return decision
    }

    private func decide(_ call: Call, at url: String) async -> Decision {
        let admitted = waiting.withLock { waiting in
            guard waiting[call.kind, default: 0] < configuration.concurrency else { return false }
            waiting[call.kind, default: 0] += 1
            return true
        }
        guard admitted else { return .unavailable("the \(call.kind) hook has \(configuration.concurrency) calls waiting") }
        defer { waiting.withLock { $0[call.kind, default: 1] -= 1 } }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Squall hook")
        request.body = .bytes(body(of: call))
        let answer: (status: UInt, body: ByteBuffer)
        do {
            // The whole answer, body included, within the timeout.
            answer = try await Deadline.run(within: configuration.timeout) { [request] in
                let response = try await HTTPClient.shared.execute(request, timeout: TimeAmount(self.configuration.timeout))
                return (response.status.code, try await response.body.collect(upTo: Self.maxAnswerBytes))
            }
        } catch {
            return .unavailable("the \(call.kind) hook did not answer: \(String(describing: error).prefix(200))")
        }
        guard answer.status == 200 else { return .unavailable("the \(call.kind) hook answered \(answer.status)") }
        return decision(answer.body, kind: call.kind)
    }

    /// The JSON the backend is sent, keys sorted.
    private func body(of call: Call) -> ByteBuffer {
        var object = JSONText.Object(capacity: 256 + (call.payload?.bytes.readableBytes ?? 0) * 4 / 3)
        object.string("address", call.address?.description)
        object.string("channel", call.channel?.rawValue)
        object.string("client", call.client.uuidString)
        if let payload = call.payload {
            if payload.kind == .text {
                object.string("data", String(buffer: payload.bytes))
            } else {
                object.string("data", Data(payload.bytes.readableBytesView).base64EncodedString())
                object.string("encoding", "base64")
            }
        }
        var headers = ByteBuffer(string: "{")
        var first = true
        for (name, value) in call.headers where configuration.headers.contains(name.lowercased()) {
            if !first { headers.writeStaticString(",") }
            first = false
            JSONText.writeString(name.lowercased(), into: &headers)
            headers.writeStaticString(":")
            JSONText.writeString(value, into: &headers)
        }
        headers.writeStaticString("}")
        object.raw("headers", json: headers)
        object.string("hook", call.kind.rawValue)
        object.string("transport", call.transport)
        object.string("user", call.user)
        return object.finish()
    }

    /// An answer read as a decision; anything else is unavailable.
    private func decision(_ answer: ByteBuffer, kind: HookConfiguration.Kind) -> Decision {
        let malformed = Decision.unavailable("the \(kind) hook's answer is not {\"result\": …} or {\"error\": …}")
        guard let object = try? JSONSerialization.jsonObject(with: Data(answer.readableBytesView)) as? [String: Any] else { return malformed }
        if let error = object["error"] as? [String: Any] {
            let code = (error["code"] as? NSNumber).flatMap { (4000...4999).contains($0.intValue) ? UInt16($0.intValue) : nil }
            return .deny(code: code, message: (error["message"] as? String).map { String($0.prefix(200)) } ?? "denied by the backend")
        }
        guard let result = object["result"] as? [String: Any] else { return malformed }
        var grant = Grant()
        if let user = result["user"] as? String, user.utf8.count <= 256 { grant.user = user }
        if let info = result["info"], JSONSerialization.isValidJSONObject([info]),
            let bytes = try? JSONSerialization.data(withJSONObject: info, options: [.fragmentsAllowed, .sortedKeys])
        {
            grant.info = try? RawJSON(validating: ByteBuffer(data: bytes), limits: maxInfo)
        }
        if let seconds = (result["expire_at"] as? NSNumber)?.doubleValue, seconds.isFinite, seconds > 0 {
            grant.expires = Date(timeIntervalSince1970: min(seconds, 95_000_000_000))
        }
        if let data = result["data"] as? String {
            switch result["encoding"] as? String {
            case "base64":
                guard let bytes = Data(base64Encoded: data) else { return malformed }
                grant.payload = .binary(bytes)
            case nil:
                grant.payload = .text(data)
            default:
                return malformed
            }
            guard let payload = grant.payload, payload.bytes.readableBytes <= maxMessageSize else {
                return .unavailable("the \(kind) hook's data is over max-message-size (\(maxMessageSize) bytes)")
            }
        }
        return .allow(grant)
    }
}

extension BackendHooks.Grant {
    /// Who a client is once the connect hook allowed it: `held` (its token's) when the answer
    /// names nothing; else the user the answer names (or `held`'s), with the answer's info and
    /// `expire_at` — keeping the token's channel grants, and its expiry unless the answer gives
    /// one, when the user is the token's.
    func identity(replacing held: ClientIdentity?) -> ClientIdentity? {
        guard user != nil || info != nil || expires != nil else { return held }
        let name = user ?? held?.user ?? ""
        let same = held.map { $0.user == name } ?? false
        return ClientIdentity(
            user: name, info: info ?? held?.info, subscribe: same ? held?.subscribe ?? [] : [], publish: same ? held?.publish ?? [] : [],
            expires: expires ?? (same ? held?.validUntil : nil))
    }
}

extension BackendHooks.Decision {
    /// The refusal an HTTP client or a `/ws` request gets; `nil` when allowed.
    var refusal: APIError? {
        switch self {
        case .allow: nil
        case .deny(_, let message): APIError(.hookDenied, message: message)
        case .unavailable(let why): APIError(.hookUnavailable, message: why)
        }
    }

    /// The close a socket gets; `nil` when allowed.
    var disconnect: Disconnect? {
        switch self {
        case .allow: nil
        case .deny(let code, let message): .hookDenied(code: code, message)
        case .unavailable: .hookUnavailable
        }
    }
}
