// SPDX-License-Identifier: Apache-2.0

import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// Hummingbird's router as the responder of Hummingbird's HTTP/1.1 handling: what Hummingbird's
/// `Application` does around each request, which ``Listener`` (replacing its server) does
/// instead: a request id in the logger's metadata (`hb.request.id`), a bare 500 for an error no
/// middleware answered, and the `Date` and `Server` headers on every response.
struct ServedRouter: Sendable {
    let router: RouterResponder<SquallRequestContext>
    /// The `Server` header's value; `nil` leaves it out.
    let serverName: String?
    let logger: Logger
    private let date = HTTPDate()

    init(router: RouterResponder<SquallRequestContext>, serverName: String?, logger: Logger) {
        self.router = router
        self.serverName = serverName
        self.logger = logger
    }

    /// Answers one request.
    func respond(to request: Request, writer: consuming ResponseWriter, channel: any Channel) async throws {
        var logger = self.logger
        logger[metadataKey: "hb.request.id"] = .stringConvertible(RequestID())
        let context = SquallRequestContext(source: .init(channel: channel, logger: logger))
        var response: Response
        do {
            response = try await router.respond(to: request, context: context)
        } catch let error as HTTPParserError {
            // Hummingbird's HTTP handling answers a request it could not parse with a 400.
            throw error
        } catch {
            logger.debug("Unrecognised error", metadata: ["error.type": "\(error)"])
            response = Response(status: .internalServerError)
        }
        response.headers[.date] = date.now
        if let serverName { response.headers[.server] = serverName }
        do {
            try await writer.write(response: response.head, body: response.body)
        } catch is HTTPParserError {
            // A parse error now would have a second response written; end the connection.
            throw ResponseAbandoned()
        }
    }

    private struct ResponseAbandoned: Error {}
}

/// The `Date` header's value (RFC 9110 §5.6.7, `Sun, 06 Nov 1994 08:49:37 GMT`), formatted at
/// most once a second.
final class HTTPDate: Sendable {
    private let cached = Mutex<(second: Int, text: String)>((-1, ""))

    /// Now, as a `Date` header says it.
    var now: String {
        let second = Int(Date().timeIntervalSince1970)
        return cached.withLock { cached in
            if cached.second != second { cached = (second, Self.format(second)) }
            return cached.text
        }
    }

    static func format(_ secondsSince1970: Int) -> String {
        var time = time_t(secondsSince1970)
        var parts = tm()
        gmtime_r(&time, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
