import HTTPTypes
import Hummingbird

/// A WebSocket path and what serves it.
struct WebSocketMount: Sendable {
    /// Validates an upgrade request before it is accepted and returns extra response headers.
    /// A refused upgrade falls through to the HTTP router, which answers it with the same error
    /// a plain GET gets.
    typealias Check = @Sendable (Request, Parameters) throws -> HTTPFields

    let path: String
    let handler: any WebSocketHandler
    let check: Check
    private let segments: [Substring]

    /// `path` holds literal segments and `{name}` parameters, each matching one whole segment.
    init(path: String, handler: any WebSocketHandler, check: @escaping Check) {
        self.path = path
        self.handler = handler
        self.check = check
        self.segments = path.split(separator: "/")
    }

    /// The parameters, if `requestPath` is this mount's path.
    func match(_ requestPath: Substring) -> Parameters? {
        var parameters = Parameters()
        var requested = requestPath.split(separator: "/").makeIterator()
        for segment in segments {
            guard let part = requested.next() else { return nil }
            if segment.first == "{", segment.last == "}" {
                parameters.append(key: segment.dropFirst().dropLast(), value: part)
            } else if segment != part {
                return nil
            }
        }
        return requested.next() == nil ? parameters : nil
    }
}
