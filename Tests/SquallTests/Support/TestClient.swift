// SPDX-License-Identifier: Apache-2.0

import HTTPTypes
import HummingbirdWSClient
import HummingbirdWSCompression
import Logging
import NIOCore
import NIOWebSocket
import Synchronization

/// A real WebSocket client (HummingbirdWSClient) driven step by step from a test:
/// send, receive the next message, close, and read the server's close code.
final class TestClient: Sendable {
    enum Command: Sendable {
        case frame(WebSocketFrame)
        case fragments([String])
        case close
    }

    private let commands: AsyncStream<Command>.Continuation
    private let inbox: Inbox
    private let readGate: AsyncStream<Void>.Continuation
    /// The close frame the server sent, once the connection is over.
    private let finished: Task<WebSocketCloseFrame?, any Error>

    /// Connects to `url`. With `reading: false` the client reads nothing until
    /// ``startReading()``: its socket fills up, like a client that stopped reading. With
    /// `compressed`, it offers permessage-deflate (hummingbird-websocket's own implementation)
    /// and compresses every message it sends.
    static func connect(_ url: String, reading: Bool = true, headers: HTTPFields = [:], compressed: Bool = false) async throws -> TestClient {
        let (opened, openedSignal) = AsyncStream.makeStream(of: Void.self)
        let client = TestClient(url: url, reading: reading, headers: headers, compressed: compressed, opened: openedSignal)
        var iterator = opened.makeAsyncIterator()
        if await iterator.next() == nil {
            _ = try await client.finished.value
            throw TestFailure("connection to \(url) ended before it opened")
        }
        return client
    }

    private init(url: String, reading: Bool, headers: HTTPFields, compressed: Bool, opened: AsyncStream<Void>.Continuation) {
        let (commandStream, commands) = AsyncStream.makeStream(of: Command.self)
        let (gateStream, gate) = AsyncStream.makeStream(of: Void.self)
        let inbox = Inbox()
        self.commands = commands
        self.inbox = inbox
        self.readGate = gate
        if reading { gate.yield() }
        var logger = Logger(label: "test.client")
        logger.logLevel = .critical
        self.finished = Task {
            defer {
                opened.finish()
                inbox.end()
            }
            return try await WebSocketClient.connect(
                url: url,
                configuration: .init(
                    maxFrameSize: 1 << 22,
                    additionalHeaders: headers,
                    extensions: compressed ? [.perMessageDeflate(minFrameSizeToCompress: 1)] : [],
                    autoPing: .disabled
                ),
                logger: logger
            ) { inbound, outbound, _ in
                opened.yield()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await command in commandStream {
                            switch command {
                            case .frame(let frame):
                                try await outbound.write(.custom(frame))
                            case .fragments(let parts):
                                try await outbound.withTextMessageWriter { writer in
                                    for part in parts { try await writer(part) }
                                }
                            case .close:
                                try await outbound.close(.normalClosure, reason: nil)
                                return
                            }
                        }
                    }
                    var gates = gateStream.makeAsyncIterator()
                    _ = await gates.next()
                    for try await message in inbound.messages(maxSize: 1 << 24) {
                        inbox.put(message)
                    }
                    group.cancelAll()
                }
            }
        }
    }

    func send(_ text: String) {
        commands.yield(.frame(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: text))))
    }

    func send(binary bytes: [UInt8]) {
        commands.yield(.frame(WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer(bytes: bytes))))
    }

    /// Sends raw bytes as a text frame, valid UTF-8 or not.
    func send(rawText bytes: [UInt8]) {
        commands.yield(.frame(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(bytes: bytes))))
    }

    /// Sends one text message split into several frames.
    func send(fragments: [String]) {
        commands.yield(.fragments(fragments))
    }

    func startReading() {
        readGate.yield()
    }

    /// The next message, or `nil` once the connection has ended and everything was read.
    func next(timeout: Duration = .seconds(10)) async throws -> WebSocketMessage? {
        try await inbox.take(timeout: timeout)
    }

    /// The next message as text; fails on binary or the end of the connection.
    func nextText(timeout: Duration = .seconds(10)) async throws -> String {
        guard case .text(let text) = try await next(timeout: timeout) else {
            throw TestFailure("expected a text message")
        }
        return text
    }

    /// Starts the close handshake and returns the server's close frame.
    @discardableResult
    func close() async throws -> WebSocketCloseFrame? {
        commands.yield(.close)
        return try await closeFrame()
    }

    /// Waits for the connection to end; the server's close frame, if it sent one.
    func closeFrame(timeout: Duration = .seconds(10)) async throws -> WebSocketCloseFrame? {
        let finished = self.finished
        return try await withTimeout(timeout, "the connection to close") { try await finished.value }
    }
}

/// Messages received and not yet taken; `take` waits for one. A message is handed to a waiter
/// or kept, under one lock, so a take that times out never loses one that arrived meanwhile.
private final class Inbox: Sendable {
    private struct Waiter {
        let id: Int
        let continuation: CheckedContinuation<WebSocketMessage?, any Error>
        var timer: Task<Void, Never>?
    }

    private struct State {
        var messages: [WebSocketMessage] = []
        var ended = false
        var waiter: Waiter?
        var takes = 0
    }

    private let state = Mutex(State())

    func put(_ message: WebSocketMessage) {
        let waiter = state.withLock { state -> Waiter? in
            if let waiter = state.waiter.take() { return waiter }
            state.messages.append(message)
            return nil
        }
        waiter?.timer?.cancel()
        waiter?.continuation.resume(returning: message)
    }

    func end() {
        let waiter = state.withLock { state in
            state.ended = true
            return state.waiter.take()
        }
        waiter?.timer?.cancel()
        waiter?.continuation.resume(returning: nil)
    }

    /// The next message; `nil` once the connection ended (or the task is cancelled).
    func take(timeout: Duration) async throws -> WebSocketMessage? {
        let id = state.withLock { state in
            state.takes += 1
            return state.takes
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let ready: WebSocketMessage?? = state.withLock { state in
                    if !state.messages.isEmpty { return state.messages.removeFirst() }
                    if state.ended || Task.isCancelled { return .some(nil) }
                    state.waiter = Waiter(id: id, continuation: continuation)
                    return .none
                }
                if let ready { return continuation.resume(returning: ready) }
                let timer = Task { [self] in
                    try? await Task.sleep(for: timeout)
                    guard !Task.isCancelled, let waiter = remove(id) else { return }
                    waiter.continuation.resume(throwing: TestFailure("timed out after \(timeout): a message"))
                }
                state.withLock { state in
                    if state.waiter?.id == id { state.waiter?.timer = timer } else { timer.cancel() }
                }
            }
        } onCancel: {
            remove(id)?.continuation.resume(returning: nil)
        }
    }

    /// The waiter of take `id`, if it still waits.
    private func remove(_ id: Int) -> Waiter? {
        state.withLock { state in
            guard state.waiter?.id == id else { return nil }
            return state.waiter.take()
        }
    }
}
