// SPDX-License-Identifier: Apache-2.0

import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SquallCore

/// An error answered to an HTTP client as JSON with a stable, machine-readable code:
/// `{"error": {"code": "websocket_required", "message": "…"}}`.
///
/// Codes never change once published (clients branch on them; ``ErrorCode`` lists them);
/// messages are for people and may be reworded.
public struct APIError: Error, HTTPResponseError, Sendable {
    /// The stable code.
    public let code: ErrorCode
    /// What went wrong, in a sentence.
    public let message: String
    /// Extra response headers (e.g. `Upgrade` on 426).
    public let headers: HTTPFields

    /// An error with the given code and message; its status is the code's.
    public init(_ code: ErrorCode, message: String, headers: HTTPFields = [:]) {
        self.code = code
        self.message = message
        self.headers = headers
    }

    /// The HTTP status: the code's.
    public var status: HTTPResponse.Status { code.status }

    /// 426: a WebSocket upgrade asked for a protocol version other than RFC 6455's 13.
    static func unsupportedWebSocketVersion(_ version: String) -> APIError {
        APIError(
            .unsupportedWebSocketVersion,
            message: "Squall speaks WebSocket version 13 (RFC 6455), not '\(version.prefix(16))'",
            headers: [.secWebSocketVersion: "13"]
        )
    }

    /// The answer to an upgrade that cannot succeed (RFC 6455 §4.2.2).
    init(_ error: WebSocketHandshake.HandshakeError) {
        switch error {
        case .unsupportedVersion(let version): self = .unsupportedWebSocketVersion(version)
        case .invalidKey: self = .invalidWebSocketKey
        }
    }

    /// 400: a WebSocket upgrade without exactly one Sec-WebSocket-Key.
    static let invalidWebSocketKey = APIError(
        .invalidWebSocketKey,
        message: "a WebSocket upgrade needs exactly one Sec-WebSocket-Key"
    )

    /// 401: no valid connection token where one is needed; `why` says what was wrong with it.
    public static func unauthorized(_ why: String) -> APIError {
        APIError(.unauthorized, message: why, headers: [.wwwAuthenticate: "Bearer"])
    }

    /// 403: namespace `namespace`'s `rule` refuses this client (the default namespace when
    /// `namespace` is empty).
    public static func permissionDenied(namespace: String, rule: String, _ why: String) -> APIError {
        let name = namespace.isEmpty ? "the default namespace" : "namespace \(namespace)"
        return APIError(.permissionDenied, message: "\(name) refuses this (\(rule)): \(why)")
    }

    /// 403: a page on `origin` may not open a WebSocket or change state here.
    static func originNotAllowed(_ origin: String) -> APIError {
        APIError(
            .originNotAllowed,
            message: "pages on \(origin.prefix(200)) may not use this server; it admits its own origin and those given with --allowed-origin"
        )
    }

    /// 503: the server holds `limit` connections, in all or from this client's address.
    static func tooManyConnections(limit: Int, fromOneAddress: Bool) -> APIError {
        APIError(
            .tooManyConnections,
            message: fromOneAddress
                ? "this address has \(limit) connections open, as many as the server takes from one address; close one or retry later"
                : "the server holds \(limit) connections, as many as it takes; retry later",
            headers: [.retryAfter: "1"]
        )
    }

    /// 503: the store could not commit a publish; the message was not published.
    public static let storeUnavailable = APIError(
        .storeUnavailable,
        message: "the message could not be stored, so it was not published; retry later",
        headers: [.retryAfter: "1"]
    )

    /// 503: the channel's log could not be read from the store in time; nothing was done.
    public static let channelUnavailable = APIError(
        .storeUnavailable,
        message: "the channel could not be read from the store in time; retry later",
        headers: [.retryAfter: "1"]
    )

    /// 422: the idempotency key already named a publish of another payload on this channel.
    public static let idempotencyKeyReused = APIError(
        .idempotencyKeyReused,
        message: "this idempotency key was used on this channel for another message; use a new key for a new message"
    )

    /// The answer to a publish the hub refused.
    public init(_ error: PublishError) {
        switch error {
        case .storeUnavailable: self = .storeUnavailable
        case .idempotencyKeyReused: self = .idempotencyKeyReused
        }
    }

    /// 429: the client published (or, as `action` says, subscribed) faster than `rate` allows;
    /// it may again after `wait`.
    public static func rateLimited(_ rate: RateLimit, wait: Duration, action: String = "published") -> APIError {
        let seconds = max(1, wait.components.seconds + (wait.components.attoseconds > 0 ? 1 : 0))
        return APIError(
            .rateLimited,
            message: "\(action) faster than the rate this server allows (\(rate)); retry in \(seconds) s",
            headers: [.retryAfter: "\(seconds)"]
        )
    }

    /// 426: a WebSocket endpoint was requested without a WebSocket upgrade.
    public static func webSocketRequired(_ path: String) -> APIError {
        APIError(
            .webSocketRequired,
            message: "\(path) is a WebSocket endpoint: connect with a WebSocket client (ws://…\(path))",
            headers: [.upgrade: "websocket"]
        )
    }

    /// The JSON body: `{"error":{"code":…,"message":…}}`.
    var jsonBody: ByteBuffer {
        var detail = JSONText.Object()
        detail.string("code", code.description)
        detail.string("message", message)
        var body = JSONText.Object()
        body.raw("error", json: detail.finish())
        return body.finish()
    }

    /// The whole HTTP/1.1 response as bytes, closing the connection: for a client that is
    /// answered before any HTTP handler exists (a malformed WebSocket handshake).
    func closingResponse(allocator: ByteBufferAllocator) -> ByteBuffer {
        let body = jsonBody
        var buffer = allocator.buffer(capacity: 256 + body.readableBytes)
        buffer.writeString("HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n")
        for field in headers {
            buffer.writeString("\(field.name.rawName): \(field.value)\r\n")
        }
        buffer.writeString("content-type: application/json; charset=utf-8\r\ncontent-length: \(body.readableBytes)\r\nconnection: close\r\n\r\n")
        buffer.writeImmutableBuffer(body)
        return buffer
    }

    /// The JSON response.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: jsonBody))
    }
}

extension APIError {
    /// 400 `invalid_channel`.
    public static func invalidChannel(_ error: ChannelNameError) -> APIError {
        APIError(.invalidChannel, message: error.description)
    }

    /// 400 `invalid_position`.
    public static func invalidPosition(_ text: String) -> APIError {
        APIError(.invalidPosition, message: "position must be EPOCH:OFFSET (e.g. k3x9q2ab:41), got '\(text.prefix(64))'")
    }

    /// 400 `invalid_parameter`.
    public static func invalidParameter(_ name: String, _ expectation: String) -> APIError {
        APIError(.invalidParameter, message: "\(name) must be \(expectation)")
    }

    /// 413 `message_too_large`.
    public static func messageTooLarge(limit: Int) -> APIError {
        APIError(.messageTooLarge, message: "messages are limited to \(limit) bytes")
    }

    /// 400 `malformed_request`: the request head is not HTTP/1.1 as RFC 9112 writes it.
    static let malformedRequest = APIError(.malformedRequest, message: "the request is not well-formed HTTP/1.1")

    /// 431 `request_head_too_large`: the request head is longer than the server reads.
    static let requestHeadTooLarge = APIError(
        .requestHeadTooLarge,
        message: "the request head is longer than the server reads"
    )

    /// 414 `uri_too_long`: the request line alone is longer than the server reads.
    static let uriTooLong = APIError(.uriTooLong, message: "the request target is longer than the server reads")

    /// 404 `not_found`.
    public static func notFound(_ path: String) -> APIError {
        APIError(.notFound, message: "no route for \(path); see docs/protocol.md")
    }

    /// A validated channel name, or 400 `invalid_channel`.
    static func channel(_ name: String?) throws(APIError) -> ChannelName {
        // A path segment as a client encoded it: squall.js writes `chat:lobby` as `chat%3Alobby`.
        let decoded = name.map { $0.contains("%") ? ($0.removingPercentEncoding ?? $0) : $0 }
        do {
            return try ChannelName(decoded ?? "")
        } catch {
            throw invalidChannel(error)
        }
    }

    /// A parsed position (`nil` when absent), or 400 `invalid_position`.
    static func position(_ text: String?) throws(APIError) -> StreamPosition? {
        guard let text, !text.isEmpty else { return nil }
        guard let position = StreamPosition(text) else { throw invalidPosition(text) }
        return position
    }
}
