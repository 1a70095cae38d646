// SPDX-License-Identifier: Apache-2.0

import Hummingbird
import NIOCore
import OpenAPIRuntime

/// What stands before every server API route: the API is on (some `api-key` is configured, else
/// 404 `api_disabled`), the request carries one of the keys (`Authorization: apikey KEY` or
/// `Bearer KEY`, else 401 `unauthorized`), and its body fits (else 413 `message_too_large`) —
/// read whole, within that bound, before anything decodes it. What the generated code refuses
/// (a body that is not the operation's JSON) comes back as the registry's 400
/// `invalid_request`, and a command's own ``APIError`` as itself.
struct APIGate: RouterMiddleware {
    typealias Context = SquallRequestContext

    /// The keys now: a reload changes them for the next request.
    let policy: LivePolicy
    /// Most bytes a request body may have: a batch of commands, each message within
    /// `max-message-size`.
    let maxBodyBytes: Int

    /// 400: a body that is not JSON.
    static let notJSON = APIError(.invalidRequest, message: "the body must be JSON, sent as Content-Type: application/json")

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let keys = policy.current.apiKeys
        guard !keys.isEmpty else {
            throw APIError(.apiDisabled, message: "the server API is off: start the server with an api-key to turn it on")
        }
        guard let key = Self.key(request.headers[.authorization]), keys.admits(key) else {
            throw APIError.unauthorized("the server API needs one of the server's API keys, sent as Authorization: apikey KEY")
        }
        var request = request
        do {
            _ = try await request.collectBody(upTo: maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw APIError.messageTooLarge(limit: maxBodyBytes)
        }
        do {
            return try await next(request, context)
        } catch let error as ServerError {
            throw Self.refusal(error)
        }
    }

    /// The key an `Authorization` value carries: `apikey KEY` or `Bearer KEY`, either scheme in
    /// any case.
    static func key(_ authorization: String?) -> Substring? {
        guard let authorization, let space = authorization.firstIndex(of: " ") else { return nil }
        let scheme = authorization[..<space].lowercased()
        guard scheme == "apikey" || scheme == "bearer" else { return nil }
        let key = authorization[authorization.index(after: space)...].drop { $0 == " " }
        return key.isEmpty ? nil : key
    }

    /// What the generated code threw, as the registry's error.
    static func refusal(_ error: ServerError) -> APIError {
        if let refusal = error.underlyingError as? APIError { return refusal }
        let why = (error.underlyingError as? DecodingError).map(Self.describe) ?? "\(error.underlyingError)"
        return APIError(.invalidRequest, message: "the body is not a valid \(error.operationID) request: \(why.prefix(300))")
    }

    /// A decoding error as a sentence naming the field.
    private static func describe(_ error: DecodingError) -> String {
        let (path, detail): ([any CodingKey], String) =
            switch error {
            case .typeMismatch(_, let context), .valueNotFound(_, let context), .keyNotFound(_, let context), .dataCorrupted(let context):
                (context.codingPath, context.debugDescription)
            @unknown default:
                ([], "\(error)")
            }
        let field = path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return field.isEmpty ? detail : "\(field.dropFirst(field.hasPrefix(".") ? 1 : 0)): \(detail)"
    }
}
