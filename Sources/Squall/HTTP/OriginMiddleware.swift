// SPDX-License-Identifier: Apache-2.0

import HTTPTypes
import Hummingbird

/// The ``OriginPolicy`` on the HTTP routes, with CORS for the origins it lists.
///
/// - A request without `Origin` (not from a page), or from the server's own origin, passes
///   untouched.
/// - From a **listed** origin: a preflight (`OPTIONS` with `Access-Control-Request-Method`) is
///   answered 204 with the methods and headers Squall's routes take, cacheable for 10 minutes;
///   any other request is served and its reply, errors included, names the origin in
///   `Access-Control-Allow-Origin` (with `Vary: Origin`), so pages there can read it.
/// - From **any other** origin: a preflight, and every request that may change state (every
///   method but `GET` and `HEAD`), is refused with 403 `origin_not_allowed`; a read is served
///   without CORS headers, so the browser keeps its answer from the page.
///
/// Contract: it runs outside ``JSONErrorMiddleware``, so every error it sees is an ``APIError``.
///
/// Written here rather than with Hummingbird's `CORSMiddleware`, which takes a list of origins
/// only as variadic arguments fixed at compile time and cannot admit the server's own origin.
struct OriginMiddleware: RouterMiddleware {
    typealias Context = SquallRequestContext

    /// The origins admitted now, read per request (a reload changes them).
    let origins: @Sendable () -> OriginPolicy

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin] else { return try await next(request, context) }
        let policy = origins()
        let host = request.head.authority
        let listed = policy.admitsAny || policy.allowed.contains(origin.lowercased())
        guard listed || policy.admits(origin: origin, host: host) else {
            if request.method == .get || request.method == .head, request.headers[.accessControlRequestMethod] == nil {
                return try await next(request, context)
            }
            throw APIError.originNotAllowed(origin)
        }
        guard listed else { return try await next(request, context) }
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            return Response(status: .noContent, headers: Self.preflightHeaders(origin: origin))
        }
        do {
            var response = try await next(request, context)
            response.headers[.accessControlAllowOrigin] = origin
            response.headers[values: .vary].append("Origin")
            return response
        } catch let error as APIError {
            // Every error is an APIError by now (JSONErrorMiddleware runs inside this one).
            var headers = error.headers
            headers[.accessControlAllowOrigin] = origin
            headers[values: .vary].append("Origin")
            throw APIError(error.code, message: error.message, headers: headers)
        }
    }

    private static func preflightHeaders(origin: String) -> HTTPFields {
        [
            .accessControlAllowOrigin: origin,
            .accessControlAllowMethods: "GET, HEAD, POST, OPTIONS",
            .accessControlAllowHeaders: "Accept, Authorization, Content-Type, Idempotency-Key, Last-Event-ID",
            .accessControlMaxAge: "600",
            .vary: "Origin",
        ]
    }
}
