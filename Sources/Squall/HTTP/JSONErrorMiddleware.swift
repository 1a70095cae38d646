// SPDX-License-Identifier: Apache-2.0

import Hummingbird
import NIOCore

/// Makes every HTTP error a JSON error with a stable code (see ``APIError``), including the ones
/// Hummingbird raises itself: an unknown route (`not_found`), a known route with another method
/// (`method_not_allowed`), a body over the limit (`message_too_large`); anything else is logged
/// and answered 500 `internal_error`.
struct JSONErrorMiddleware: RouterMiddleware {
    typealias Context = SquallRequestContext

    let maxMessageSize: Int
    /// Told of each error answered, for `/metrics` and the admin page: its code and the
    /// request's method and path.
    let refused: @Sendable (ErrorCode, String) -> Void

    init(maxMessageSize: Int, refused: @escaping @Sendable (ErrorCode, String) -> Void = { _, _ in }) {
        self.maxMessageSize = maxMessageSize
        self.refused = refused
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await answer(request, context: context, next: next)
        } catch let error as APIError {
            refused(error.code, "\(request.method) \(request.uri.path)")
            throw error
        }
    }

    private func answer(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch is NIOTooManyBytesError {
            throw APIError.messageTooLarge(limit: maxMessageSize)
        } catch let error as HTTPError {
            switch error.status {
            case .notFound:
                throw APIError.notFound(request.uri.path)
            case .methodNotAllowed:
                throw APIError(.methodNotAllowed, message: "\(request.method) is not allowed on \(request.uri.path)")
            case .contentTooLarge:
                throw APIError.messageTooLarge(limit: maxMessageSize)
            case .badRequest:
                throw APIError(.invalidRequest, message: error.body ?? "the request cannot be served")
            default:
                context.logger.error("Request failed", metadata: ["error": "\(error)"])
                throw APIError(.internalError, message: "the server could not answer this request")
            }
        }
    }
}
