import Hummingbird
import Logging

/// One line per request, as Tornado's `tornado.access` logger writes it:
/// `200 GET /healthz (127.0.0.1) 0.21ms`. 1xx–3xx log at info, 4xx at warning, 5xx at error.
///
/// On the WebSocket router a request only reaches this middleware when it asks to upgrade,
/// and an `.ok` answer there means the upgrade was accepted: it is logged as `101`. A refused
/// upgrade falls through to the HTTP router, which logs it itself.
struct AccessLogMiddleware: RouterMiddleware {
    typealias Context = SquallRequestContext

    let logger: Logger
    let onWebSocketRouter: Bool

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            if !onWebSocketRouter {
                log(status: response.status.code, request: request, context: context, since: start)
            } else if response.status == .ok {
                log(status: 101, request: request, context: context, since: start)
            }
            return response
        } catch {
            if !onWebSocketRouter {
                let status = (error as? any HTTPResponseError)?.status.code ?? 500
                log(status: status, request: request, context: context, since: start)
            }
            throw error
        }
    }

    private func log(status: Int, request: Request, context: Context, since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        let milliseconds = Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) / 1e15
        let level: Logger.Level = status >= 500 ? .error : status >= 400 ? .warning : .info
        let remote = context.remoteAddress?.hostDescription ?? "-"
        let line = "\(status) \(request.method.rawValue) \(request.uri) (\(remote)) \(String(format: "%.2f", milliseconds))ms"
        logger.log(level: level, "\(line)")
    }
}
