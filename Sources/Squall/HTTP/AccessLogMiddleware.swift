// SPDX-License-Identifier: Apache-2.0

import Hummingbird
import Logging

/// One line per request, as Tornado's `tornado.access` logger writes it:
/// `200 GET /healthz (127.0.0.1) 0.21ms`. 1xx–3xx log at info, 4xx at warning, 5xx at error.
/// Accepted WebSocket upgrades never reach the router; ``ConnectionSetup`` logs them as `101`
/// with ``log(status:method:uri:remote:since:logger:)``. A refused upgrade is answered, and
/// logged, by the router.
struct AccessLogMiddleware: RouterMiddleware {
    typealias Context = SquallRequestContext

    let logger: Logger
    /// Whose address a request is logged under: behind a trusted proxy, the client's.
    let addresses: ClientAddresses

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        // The address, not yet text: formatting it costs a printf, paid only if the line is logged.
        let address = context.client(of: request, addresses)
        do {
            let response = try await next(request, context)
            Self.log(
                status: response.status.code, method: request.method.rawValue, uri: "\(request.uri)", remote: address?.description, since: start,
                logger: logger)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            Self.log(status: status, method: request.method.rawValue, uri: "\(request.uri)", remote: address?.description, since: start, logger: logger)
            throw error
        }
    }

    /// Writes one access line.
    /// The URI and address are only turned into text when the line is logged at all.
    static func log(
        status: Int,
        method: String,
        uri: @autoclosure () -> String,
        remote: @autoclosure () -> String?,
        since start: ContinuousClock.Instant,
        logger: Logger
    ) {
        let level: Logger.Level = status >= 500 ? .error : status >= 400 ? .warning : .info
        guard logger.logLevel <= level else { return }
        let elapsed = ContinuousClock.now - start
        let milliseconds = Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) / 1e15
        let line = "\(status) \(method) \(redacted(uri())) (\(remote() ?? "-")) \(String(format: "%.2f", milliseconds))ms"
        logger.log(level: level, "\(line)")
    }

    /// `uri` with the values of `token` and `subscription_token` replaced: a token in a URL
    /// (all an `EventSource` can send) must not end up in logs, where anyone reading them could
    /// connect as its user until it expires.
    static func redacted(_ uri: String) -> String {
        guard let query = uri.firstIndex(of: "?"), uri.contains("token=") else { return uri }
        let parameters = uri[uri.index(after: query)...].split(separator: "&", omittingEmptySubsequences: false).map { parameter in
            parameter.hasPrefix("token=") || parameter.hasPrefix("subscription_token=")
                ? parameter.prefix { $0 != "=" } + "=REDACTED" : String(parameter)
        }
        return String(uri[...query]) + parameters.joined(separator: "&")
    }
}
