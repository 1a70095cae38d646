// SPDX-License-Identifier: Apache-2.0

import AsyncHTTPClient
import NIOCore
import Synchronization

/// One Server-Sent Event as a browser's EventSource would see it.
struct SSEEvent: Sendable {
    let name: String
    let id: String?
    let data: String

    func decoded() throws -> WireEvent { try WireEvent.decode(data) }
}

/// A real streaming HTTP client (AsyncHTTPClient) reading a `text/event-stream`.
final class SSEClient: Sendable {
    private let events: AsyncStream<SSEEvent>
    private let reader: Task<Void, any Error>
    private let iterator = Mutex<AsyncStream<SSEEvent>.AsyncIterator?>(nil)
    let status: Int

    /// Opens the stream; `lastEventID` resumes like a reconnecting EventSource.
    static func connect(_ url: String, lastEventID: String? = nil) async throws -> SSEClient {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "text/event-stream")
        if let lastEventID { request.headers.add(name: "Last-Event-ID", value: lastEventID) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        return SSEClient(response: response)
    }

    private init(response: HTTPClientResponse) {
        status = Int(response.status.code)
        let (events, sink) = AsyncStream.makeStream(of: SSEEvent.self)
        self.events = events
        iterator.withLock { $0 = events.makeAsyncIterator() }
        reader = Task {
            defer { sink.finish() }
            var pending = ""
            for try await chunk in response.body {
                pending += String(buffer: chunk)
                while let end = pending.range(of: "\n\n") {
                    let block = pending[..<end.lowerBound]
                    pending = String(pending[end.upperBound...])
                    if let event = Self.parse(block) { sink.yield(event) }
                }
            }
        }
    }

    private static func parse(_ block: Substring) -> SSEEvent? {
        var name = "message"
        var id: String?
        var data: [Substring] = []
        for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(":") { continue }
            if line.hasPrefix("event: ") { name = String(line.dropFirst(7)) }
            if line.hasPrefix("id: ") { id = String(line.dropFirst(4)) }
            if line.hasPrefix("data: ") { data.append(line.dropFirst(6)) }
        }
        return data.isEmpty ? nil : SSEEvent(name: name, id: id, data: data.joined(separator: "\n"))
    }

    /// The next event (heartbeats are skipped), or `nil` when the stream ended.
    func next(timeout: Duration = .seconds(10)) async throws -> SSEEvent? {
        let box = UnsafeIteratorBox(iterator: iterator.withLock { $0.take() }!)
        defer { iterator.withLock { $0 = box.iterator } }
        return try await withTimeout(timeout, "an SSE event") { await box.next() }
    }

    /// The next event named `name`, skipping others.
    func next(named name: String, timeout: Duration = .seconds(10)) async throws -> SSEEvent {
        while let event = try await next(timeout: timeout) {
            if event.name == name { return event }
        }
        throw TestFailure("the stream ended before a \(name) event")
    }

    /// Drops the connection, as a closed browser tab would.
    func close() {
        reader.cancel()
    }
}

/// Lets one test task at a time drive the stream's iterator across the timeout's child task.
private final class UnsafeIteratorBox: @unchecked Sendable {
    var iterator: AsyncStream<SSEEvent>.AsyncIterator

    init(iterator: AsyncStream<SSEEvent>.AsyncIterator) {
        self.iterator = iterator
    }

    func next() async -> SSEEvent? {
        await iterator.next()
    }
}
