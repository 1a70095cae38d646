// SPDX-License-Identifier: Apache-2.0

import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SquallCore

/// Any JSON object Squall sends — `/ws` replies and events, poll and history bodies, SSE event
/// data, HTTP errors — decoded leniently so that tests can assert on the fields that matter.
struct WireEvent: Decodable, Sendable {
    /// A presence entry.
    struct Member: Decodable, Sendable, Hashable {
        let id: UUID
        let info: JSONValue?
        let transport: String
    }

    struct ErrorBody: Decodable, Sendable {
        let code: String
        let message: String
    }

    let type: String?
    let ref: JSONValue?
    let channel: String?
    let epoch: String?
    let offset: UInt64?
    let recovered: Bool?
    let data: String?
    let encoding: String?
    let id: String?
    let publisher: String?
    let time: Int64?
    let code: String?
    let message: String?
    let client: JSONValue?
    let clients: [Member]?
    let next: String?
    let messages: [WireEvent]?
    let error: ErrorBody?

    static func decode(_ text: String) throws -> WireEvent {
        try JSONDecoder().decode(WireEvent.self, from: Data(text.utf8))
    }

    /// `EPOCH:OFFSET` of this message or reply.
    var position: String { "\(epoch ?? "?"):\(offset ?? 0)" }

    /// The `data` of each message, in order.
    var texts: [String] { (messages ?? []).compactMap(\.data) }
}

extension LiveServer {
    /// An HTTP request with a body; status and body text.
    func send(
        _ method: HTTPMethod,
        _ path: String,
        body: [UInt8]? = nil,
        contentType: String? = "text/plain",
        headers: [(String, String)] = []
    ) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: httpURL(path))
        request.method = method
        if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return (Int(response.status.code), String(buffer: bytes))
    }

    /// Publishes `text` over HTTP and returns the acknowledgement.
    @discardableResult
    func publish(_ text: String, to channel: String) async throws -> WireEvent {
        let response = try await send(.POST, "/channels/\(channel)/messages", body: Array(text.utf8))
        guard response.status == 201 else { throw TestFailure("publish answered \(response.status): \(response.body)") }
        return try WireEvent.decode(response.body)
    }

    /// GET `path`, decoded.
    func getJSON(_ path: String) async throws -> (status: Int, event: WireEvent) {
        let response = try await send(.GET, path, contentType: nil)
        return (response.status, try WireEvent.decode(response.body))
    }
}

extension TestClient {
    /// The next message, decoded as a Squall JSON event.
    func nextEvent(timeout: Duration = .seconds(10)) async throws -> WireEvent {
        try WireEvent.decode(try await nextText(timeout: timeout))
    }

    /// Skips events until one of `type` arrives.
    func next(type: String, timeout: Duration = .seconds(10)) async throws -> WireEvent {
        while true {
            let event = try await nextEvent(timeout: timeout)
            if event.type == type { return event }
        }
    }
}
