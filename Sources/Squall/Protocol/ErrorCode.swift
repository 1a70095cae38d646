// SPDX-License-Identifier: Apache-2.0

import HTTPTypes

/// Every JSON error code Squall answers with — over HTTP and in `/ws` `error` replies — with the
/// HTTP status it goes with (centrifuge's `errors.go`). A `/ws` reply carries no status; its
/// code's is the one the same error gets over HTTP.
///
/// Contracts: a code never changes once published (clients branch on it); docs/protocol.md lists
/// every built-in one, and a test holds the two to each other. Embedders add their own with
/// ``custom(_:status:)``.
public enum ErrorCode: Sendable, Hashable, CustomStringConvertible {
    /// 400: the channel name is not valid.
    case invalidChannel
    /// 400: a position is not `EPOCH:OFFSET`.
    case invalidPosition
    /// 400: a query parameter or request field is out of its range.
    case invalidParameter
    /// 400: the request head is not well-formed HTTP/1.1.
    case malformedRequest
    /// 400: a text body is not UTF-8.
    case invalidUTF8
    /// 400: a `/ws` upgrade offered only subprotocols other than `squall.v1`.
    case unsupportedProtocol
    /// 400: a WebSocket upgrade without exactly one `Sec-WebSocket-Key`.
    case invalidWebSocketKey
    /// 400: a `/ws` frame is not JSON.
    case invalidJSON
    /// 400: a request field has the wrong type or is over its limits; an upgrade that cannot be
    /// read.
    case invalidRequest
    /// 400: a `/ws` request lacks a field its `op` needs.
    case missingField
    /// 400: a `/ws` request's `op` is unknown.
    case unknownOp
    /// 400: an `unsubscribe` from a channel not subscribed.
    case notSubscribed
    /// 400: a connection already subscribed to as many channels as it may.
    case tooManySubscriptions
    /// 400: a binary frame on `/ws`.
    case unsupportedFrame
    /// 401: a connection token is needed and none was given, or the one given does not verify
    /// (bad signature, unknown key, expired, not yet valid, another audience or issuer).
    case unauthorized
    /// 403: the channel's namespace does not let this client subscribe, publish or read there;
    /// the message names the namespace and the rule.
    case permissionDenied
    /// 403: the backend's hook (``HookConfiguration``) refused the connection, subscription or
    /// publish; the message is the backend's.
    case hookDenied
    /// 403: a WebSocket upgrade or a state-changing request from a web page whose origin the
    /// server does not admit (``OriginPolicy``).
    case originNotAllowed
    /// 404: no such route.
    case notFound
    /// 404: the server API (`/api/…`) is off: no `api-key` is configured.
    case apiDisabled
    /// 405: a known route with another method.
    case methodNotAllowed
    /// 413: a body over the message size limit.
    case messageTooLarge
    /// 414: a request line longer than the server reads.
    case uriTooLong
    /// 422: an idempotency key already used on the channel for another payload.
    case idempotencyKeyReused
    /// 426: a WebSocket route without an upgrade.
    case webSocketRequired
    /// 426: a WebSocket version other than 13.
    case unsupportedWebSocketVersion
    /// 429: a client published, subscribed or unsubscribed faster than its rate allows
    /// (``RateLimit``, ``SquallConfiguration/subscribeRate``).
    case rateLimited
    /// 431: a request head longer than the server reads.
    case requestHeadTooLarge
    /// 500: the server failed to answer.
    case internalError
    /// 503: the server holds as many connections as it may, in all or from this address
    /// (``ConnectionLimits``).
    case tooManyConnections
    /// 503: the backend's hook did not answer in time, could not be reached, answered something
    /// that is not a decision, or has as many calls waiting as it may; nothing was done.
    case hookUnavailable
    /// 503: the store could not commit a publish, or give a channel's log in time
    /// (``StoreError``); nothing was done.
    case storeUnavailable
    /// An embedder's own code, `snake_case`, with its status.
    case custom(String, status: HTTPResponse.Status)

    /// Every code Squall itself sends.
    public static let builtIn: [ErrorCode] = [
        .invalidChannel, .invalidPosition, .invalidParameter, .malformedRequest, .invalidUTF8, .unsupportedProtocol,
        .invalidWebSocketKey, .invalidJSON, .invalidRequest, .missingField, .unknownOp, .notSubscribed, .tooManySubscriptions,
        .unsupportedFrame, .unauthorized, .permissionDenied, .hookDenied, .originNotAllowed, .notFound, .apiDisabled, .methodNotAllowed, .messageTooLarge,
        .uriTooLong,
        .idempotencyKeyReused, .webSocketRequired,
        .unsupportedWebSocketVersion, .rateLimited, .requestHeadTooLarge, .internalError, .tooManyConnections,
        .storeUnavailable, .hookUnavailable,
    ]

    /// The code as clients see it.
    public var description: String {
        switch self {
        case .invalidChannel: "invalid_channel"
        case .invalidPosition: "invalid_position"
        case .invalidParameter: "invalid_parameter"
        case .malformedRequest: "malformed_request"
        case .invalidUTF8: "invalid_utf8"
        case .unsupportedProtocol: "unsupported_protocol"
        case .invalidWebSocketKey: "invalid_websocket_key"
        case .invalidJSON: "invalid_json"
        case .invalidRequest: "invalid_request"
        case .missingField: "missing_field"
        case .unknownOp: "unknown_op"
        case .notSubscribed: "not_subscribed"
        case .tooManySubscriptions: "too_many_subscriptions"
        case .unsupportedFrame: "unsupported_frame"
        case .unauthorized: "unauthorized"
        case .permissionDenied: "permission_denied"
        case .hookDenied: "hook_denied"
        case .hookUnavailable: "hook_unavailable"
        case .originNotAllowed: "origin_not_allowed"
        case .notFound: "not_found"
        case .apiDisabled: "api_disabled"
        case .methodNotAllowed: "method_not_allowed"
        case .messageTooLarge: "message_too_large"
        case .uriTooLong: "uri_too_long"
        case .idempotencyKeyReused: "idempotency_key_reused"
        case .webSocketRequired: "websocket_required"
        case .unsupportedWebSocketVersion: "unsupported_websocket_version"
        case .rateLimited: "rate_limited"
        case .requestHeadTooLarge: "request_head_too_large"
        case .internalError: "internal_error"
        case .tooManyConnections: "too_many_connections"
        case .storeUnavailable: "store_unavailable"
        case .custom(let code, _): code
        }
    }

    /// The HTTP status the code is answered with.
    public var status: HTTPResponse.Status {
        switch self {
        case .invalidChannel, .invalidPosition, .invalidParameter, .malformedRequest, .invalidUTF8, .unsupportedProtocol,
            .invalidWebSocketKey, .invalidJSON, .invalidRequest, .missingField, .unknownOp, .notSubscribed,
            .tooManySubscriptions, .unsupportedFrame:
            .badRequest
        case .unauthorized: .unauthorized
        case .originNotAllowed, .permissionDenied, .hookDenied: .forbidden
        case .notFound, .apiDisabled: .notFound
        case .methodNotAllowed: .methodNotAllowed
        case .messageTooLarge: .contentTooLarge
        case .uriTooLong: .init(code: 414, reasonPhrase: "URI Too Long")
        case .idempotencyKeyReused: .unprocessableContent
        case .webSocketRequired, .unsupportedWebSocketVersion: .upgradeRequired
        case .requestHeadTooLarge: .init(code: 431, reasonPhrase: "Request Header Fields Too Large")
        case .rateLimited: .tooManyRequests
        case .internalError: .internalServerError
        case .tooManyConnections, .storeUnavailable, .hookUnavailable: .serviceUnavailable
        case .custom(_, let status): status
        }
    }
}
