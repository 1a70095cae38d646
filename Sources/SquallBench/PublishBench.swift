// SPDX-License-Identifier: Apache-2.0

import Foundation
import Histogram
import NIOCore
import NIOHTTP1
import NIOPosix

/// How `squall bench publish` publishes: Squall's channel protocol or its HTTP route.
public enum PublishTransport: String, Sendable, CaseIterable, Encodable {
    /// `{"op":"publish"}` on `/ws` (`squall.v1`), up to a window of publishes in flight per
    /// connection; each is acknowledged by a `published` reply.
    case ws
    /// `POST /channels/{channel}/messages` on a keep-alive HTTP/1.1 connection, one request in
    /// flight per connection (HTTP/1.1 answers in order, and browsers do not pipeline); each
    /// is acknowledged by its 201.
    case http
    /// The server API's `POST /api/publish` (JSON, an API key), one request in flight per
    /// connection, each acknowledged by its 200.
    case api
    /// The server API's `POST /api/batch`: each request publishes `batch` messages, one request
    /// in flight per connection; its 200 acknowledges them all (a reply with an `error` counts
    /// as a refusal).
    case apiBatch = "api-batch"

    /// Whether it speaks HTTP, one request in flight per connection.
    var isHTTP: Bool { self != .ws }
}

extension Benchmarks {
    /// Acknowledged publishes: `publishers` connections share `messages` publishes of `size`
    /// bytes to one channel, as fast as the server acknowledges them (over `/ws` at most
    /// `window` in flight per connection). One subscriber on `/msg/{channel}` of the same
    /// server times every message from its send to its delivery; the acknowledgement of each
    /// is timed from its send too. `target` is the server's `/ws` URL; the HTTP route and
    /// `/msg` are reached on its host and port.
    ///
    /// Several nodes of one system (``SquallPostgres``): `moreTargets` are other nodes' `/ws`
    /// URLs, and the publishers take turns among `target` and them; the subscriber is on
    /// `subscriberTarget`'s `/msg` (default `target`), so that a message published on one node
    /// is timed to its delivery on another.
    ///
    /// Against a server that limits publish rates, run it with that limit off: every refusal
    /// is counted and reported, never retried.
    public static func publish(
        _ target: BenchTarget,
        moreTargets: [BenchTarget] = [],
        subscriberTarget: BenchTarget? = nil,
        transport: PublishTransport,
        publishers: Int,
        messages: Int,
        size: Int = 64,
        window: Int = 16,
        channel: String = "bench-publish",
        timeout: Duration = .seconds(60),
        serverPID: Int32? = nil,
        apiKey: String? = nil,
        batch: Int = 100,
        timesDeliveries: Bool = true
    ) async throws -> PublishResult {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let run = PublishRun(
            loop: loop, total: messages, size: max(size, 20), window: transport.isHTTP ? 1 : max(window, 1),
            batch: transport == .apiBatch ? max(1, batch) : 1, timesDeliveries: timesDeliveries)
        let targets = [target] + moreTargets
        var sockets: [BenchSocket] = []
        if timesDeliveries {
            sockets.append(try await connect((subscriberTarget ?? target).at(path: "/msg/\(channel)"), on: loop, delegate: run.subscriber))
        }
        var http: [any Channel] = []
        defer {
            loop.execute {
                for socket in sockets { socket.close() }
                for channel in http { channel.close(promise: nil) }
            }
        }
        let publishersList: [PublishRun.Publisher]
        switch transport {
        case .ws:
            var list: [PublishRun.Publisher] = []
            for index in 0..<publishers {
                var publisherTarget = targets[index % targets.count]
                publisherTarget.subprotocol = "squall.v1"
                let publisher = PublishRun.Publisher(run: run, transport: .ws, channel: channel, host: publisherTarget.authority)
                let socket = try await connect(publisherTarget, on: loop, delegate: publisher)
                try await loop.submit { publisher.socket = socket }.get()
                sockets.append(socket)
                list.append(publisher)
            }
            publishersList = list
        case .http, .api, .apiBatch:
            var list: [PublishRun.Publisher] = []
            for index in 0..<publishers {
                let publisherTarget = targets[index % targets.count]
                let publisher = PublishRun.Publisher(
                    run: run, transport: transport, channel: channel, host: publisherTarget.authority, apiKey: apiKey)
                let connection = try await ClientBootstrap(group: loop)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHTTPClientHandlers()
                            try channel.pipeline.syncOperations.addHandler(publisher)
                        }
                    }
                    .connect(to: publisherTarget.address)
                    .get()
                http.append(connection)
                list.append(publisher)
            }
            publishersList = list
        }
        try await run.warmUp(publishers: publishersList)
        let measured = try await Measured.run(serverPID: serverPID) {
            try await run.measure(publishers: publishersList, timeout: timeout)
        }
        let counts = try await loop.submit { (run.acknowledged, run.refused, run.delivered, run.acknowledgements, run.deliveries) }.get()
        return PublishResult(
            transport: transport,
            publishers: publishers,
            messages: messages,
            size: max(size, 20),
            acknowledged: counts.0,
            refused: counts.1,
            delivered: counts.2,
            seconds: measured.seconds,
            acknowledgedPerSecond: Double(counts.0) / measured.seconds,
            acknowledgedP50Milliseconds: Double(counts.3.valueAtPercentile(50)) / 1000,
            acknowledgedP99Milliseconds: Double(counts.3.valueAtPercentile(99)) / 1000,
            deliveredP50Milliseconds: Double(counts.4.valueAtPercentile(50)) / 1000,
            deliveredP99Milliseconds: Double(counts.4.valueAtPercentile(99)) / 1000,
            clientCPUSeconds: measured.clientCPUSeconds,
            serverCPUSeconds: measured.serverCPUSeconds
        )
    }
}

/// An acknowledged-publish run.
public struct PublishResult: Sendable, Encodable, CustomStringConvertible {
    public let transport: PublishTransport
    public let publishers: Int
    public let messages: Int
    public let size: Int
    /// Publishes the server acknowledged (201, or `published` on `/ws`).
    public let acknowledged: Int
    /// Publishes the server answered with an error (a rate limit, `store_unavailable`, …).
    public let refused: Int
    /// Messages the subscriber received.
    public let delivered: Int
    public let seconds: Double
    /// Acknowledged publishes per second of the run.
    public let acknowledgedPerSecond: Double
    /// From a publish's send to its acknowledgement, in milliseconds.
    public let acknowledgedP50Milliseconds: Double
    public let acknowledgedP99Milliseconds: Double
    /// From a publish's send to its delivery to the subscriber, in milliseconds.
    public let deliveredP50Milliseconds: Double
    public let deliveredP99Milliseconds: Double
    public let clientCPUSeconds: Double
    /// The server's CPU time during the measured run, when its process id was given.
    public let serverCPUSeconds: Double?

    public var description: String {
        """
        publish over \(transport.rawValue): \(publishers) publishers × \(messages) messages of \(size) B
          acknowledged \(acknowledged)/\(messages) (refused \(refused)) in \(format(seconds)) s = \(Int(acknowledgedPerSecond)) acknowledged/s
          acknowledgement p50 \(format(acknowledgedP50Milliseconds)) ms, p99 \(format(acknowledgedP99Milliseconds)) ms
          delivered \(delivered); publish to delivery p50 \(format(deliveredP50Milliseconds)) ms, p99 \(format(deliveredP99Milliseconds)) ms
          client CPU \(format(clientCPUSeconds)) s\(serverCPUSeconds.map { "; server CPU \(format(1e6 * $0 / Double(max(acknowledged, 1)))) µs per publish" } ?? "")
        """
    }
}

/// One run's shared state: what is left to send, the counts and the histograms. Touched only
/// on `loop`, as are its publishers and subscriber.
private final class PublishRun: @unchecked Sendable {
    let loop: any EventLoop
    let total: Int
    let size: Int
    let window: Int
    /// Messages per request (`api-batch`); 1 otherwise.
    let batch: Int
    /// Whether a subscriber times deliveries (and the run waits for them); without one, the
    /// run is of acknowledgements alone, against any server with the HTTP route.
    let timesDeliveries: Bool
    private(set) var acknowledged = 0
    private(set) var refused = 0
    private(set) var delivered = 0
    var acknowledgements = Histogram<UInt64>(highestTrackableValue: 60_000_000)
    var deliveries = Histogram<UInt64>(highestTrackableValue: 60_000_000)
    private var sent = 0
    private var measuring = false
    private var warmUpAnswers = 0
    private var finished: EventLoopPromise<Void>?
    lazy var subscriber = Subscriber(run: self)

    init(loop: any EventLoop, total: Int, size: Int, window: Int, batch: Int = 1, timesDeliveries: Bool = true) {
        self.loop = loop
        self.total = total
        self.size = size
        self.window = window
        self.batch = batch
        self.timesDeliveries = timesDeliveries
    }

    /// One publish from each publisher, unmeasured, until the subscriber has seen one:
    /// every connection is open and the subscriber is subscribed. Without a subscriber, one
    /// from each publisher, answered.
    func warmUp(publishers: [Publisher]) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        if !timesDeliveries {
            try await loop.submit { for publisher in publishers { publisher.send(warmUp: true) } }.get()
        }
        while try await loop.submit({ self.timesDeliveries && !self.subscriber.warmedUp }).get() {
            guard ContinuousClock.now < deadline else { throw BenchError.warmUpTimedOut }
            try await loop.submit { for publisher in publishers where publisher.inFlight.isEmpty { publisher.send(warmUp: true) } }.get()
            try await Task.sleep(for: .milliseconds(100))
        }
        // Let the warm-up publishes' answers arrive before counting starts.
        while try await loop.submit({ publishers.contains { !$0.inFlight.isEmpty } }).get() {
            guard ContinuousClock.now < deadline else { throw BenchError.warmUpTimedOut }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Sends `total` publishes across `publishers` and waits until each is answered and
    /// delivered, or `timeout`.
    func measure(publishers: [Publisher], timeout: Duration) async throws {
        let done = loop.makePromise(of: Void.self)
        try await loop.submit {
            self.finished = done
            self.measuring = true
            for publisher in publishers { publisher.pump() }
        }.get()
        let timer = loop.scheduleTask(in: TimeAmount(timeout)) { self.finish() }
        defer { timer.cancel() }
        try await done.futureResult.get()
    }

    /// Claims the next publish of the run, if any is left.
    func claim() -> Bool {
        claim(upTo: 1) == 1
    }

    /// Claims up to `count` publishes of the run: how many were left to claim.
    func claim(upTo count: Int) -> Int {
        guard measuring else { return 0 }
        let claimed = min(count, total - sent)
        sent += claimed
        return claimed
    }

    func answered(acknowledged ok: Bool, sentAt: UInt64?) {
        guard measuring, let sentAt else { return }
        if ok {
            acknowledged += 1
            _ = acknowledgements.record(Self.microseconds(since: sentAt))
        } else {
            refused += 1
        }
        checkDone()
    }

    func deliveredMessage(sentAt: UInt64) {
        guard measuring else { return }
        delivered += 1
        _ = deliveries.record(Self.microseconds(since: sentAt))
        checkDone()
    }

    private func checkDone() {
        if acknowledged + refused >= total && (delivered >= acknowledged || !timesDeliveries) { finish() }
    }

    private func finish() {
        guard let finished else { return }
        self.finished = nil
        finished.succeed()
    }

    /// A payload of `size` bytes: `t`, the send time in nanoseconds (19 digits), then padding;
    /// `w` instead of `t` for warm-up publishes, which are not timed.
    func payload(sentAt: UInt64, warmUp: Bool) -> [UInt8] {
        var stamp = Array(String(sentAt).utf8)
        stamp = Array(repeating: UInt8(ascii: "0"), count: max(0, 19 - stamp.count)) + stamp
        return [UInt8(ascii: warmUp ? "w" : "t")] + stamp + Array(repeating: UInt8(ascii: "x"), count: size - 20)
    }

    static func microseconds(since sentAt: UInt64) -> UInt64 {
        let now = NIODeadline.now().uptimeNanoseconds
        return now > sentAt ? (now - sentAt) / 1000 : 0
    }

    /// The subscriber on `/msg/{channel}`: every frame is a message's payload.
    final class Subscriber: BenchSocketDelegate, @unchecked Sendable {
        unowned let run: PublishRun
        private(set) var warmedUp = false

        init(run: PublishRun) {
            self.run = run
        }

        func opened(_ socket: BenchSocket) {}

        func received(_ socket: BenchSocket, payload: ByteBufferView) {
            guard payload.first == UInt8(ascii: "t"), payload.count >= 20 else {
                warmedUp = true
                return
            }
            var sentAt: UInt64 = 0
            for byte in payload.dropFirst().prefix(19) { sentAt = sentAt &* 10 &+ UInt64(byte &- 48) }
            run.deliveredMessage(sentAt: sentAt)
        }

        func readComplete(_ socket: BenchSocket) {}
        func closed(_ socket: BenchSocket) {}
    }

    /// One publishing connection, over `/ws` (a ``BenchSocket`` delegate) or HTTP (a channel
    /// handler after NIO's HTTP client handlers). Answers come in send order on both.
    final class Publisher: BenchSocketDelegate, ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPClientResponsePart
        typealias OutboundOut = HTTPClientRequestPart

        unowned let run: PublishRun
        let transport: PublishTransport
        /// Set once the `/ws` handshake is done.
        var socket: BenchSocket?
        /// Messages in each `api-batch` request not yet answered, by request number.
        private var batchSizes: [UInt64: Int] = [:]
        /// The answer's body so far (`api-batch` counts the errors in it).
        private var answerBody: [UInt8] = []
        /// Send times of the publishes not yet answered, by request number; `nil` for warm-ups.
        /// HTTP answers in request order; `/ws` replies carry the number as `ref`, since a
        /// refusal (sent at once) can overtake acknowledgements still waiting for a commit.
        private(set) var inFlight: [UInt64: UInt64?] = [:]
        private var nextRequest: UInt64 = 0
        /// The oldest HTTP request not yet answered.
        private var nextAnswer: UInt64 = 0
        private var context: ChannelHandlerContext?
        private var status: HTTPResponseStatus?
        private let channel: String
        /// The HTTP request's head but for its `Content-Length`, built once.
        private let httpHead: HTTPRequestHead

        init(run: PublishRun, transport: PublishTransport, channel: String, host: String, apiKey: String? = nil) {
            self.run = run
            self.transport = transport
            self.channel = channel
            var headers: HTTPHeaders = ["Host": host, "Content-Type": transport == .http ? "text/plain" : "application/json"]
            // The key opens the server API only: the channel route has no use for it.
            if let apiKey, transport != .http { headers.add(name: "Authorization", value: "apikey \(apiKey)") }
            let uri =
                switch transport {
                case .ws, .http: "/channels/\(channel)/messages"
                case .api: "/api/publish"
                case .apiBatch: "/api/batch"
                }
            self.httpHead = HTTPRequestHead(version: .http1_1, method: .POST, uri: uri, headers: headers)
        }

        /// Sends publishes until the window is full or the run has none left.
        func pump() {
            var sentAny = false
            while inFlight.count < run.window {
                let claimed = run.claim(upTo: run.batch)
                guard claimed > 0 else { break }
                send(warmUp: false, flush: false, messages: claimed)
                sentAny = true
            }
            if sentAny { flush() }
        }

        func send(warmUp: Bool, flush: Bool = true, messages: Int = 1) {
            let sentAt = NIODeadline.now().uptimeNanoseconds
            let request = nextRequest
            nextRequest += 1
            inFlight.updateValue(warmUp ? nil : sentAt, forKey: request)
            batchSizes[request] = messages
            let payload = run.payload(sentAt: sentAt, warmUp: warmUp)
            switch transport {
            case .ws:
                // The payload is ASCII digits and padding: nothing to escape.
                let json = #"{"op":"publish","channel":"\#(channel)","data":"\#(String(decoding: payload, as: UTF8.self))","ref":\#(request)}"#
                socket?.sendText(Array(json.utf8), flush: false)
            case .http, .api, .apiBatch:
                guard let context else { return }
                // The payload is ASCII digits and padding: nothing to escape.
                let data = String(decoding: payload, as: UTF8.self)
                let body: [UInt8] =
                    switch transport {
                    case .ws, .http: payload
                    case .api: Array(#"{"channel":"\#(channel)","data":"\#(data)"}"#.utf8)
                    case .apiBatch:
                        Array(
                            (#"{"commands":["#
                                + Array(repeating: #"{"method":"publish","params":{"channel":"\#(channel)","data":"\#(data)"}}"#, count: messages)
                                .joined(separator: ",") + "]}").utf8)
                    }
                var head = httpHead
                head.headers.add(name: "Content-Length", value: String(body.count))
                context.write(wrapOutboundOut(.head(head)), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
                context.write(wrapOutboundOut(.end(nil)), promise: nil)
            }
            if flush { self.flush() }
        }

        private func flush() {
            switch transport {
            case .ws: socket?.context?.flush()
            case .http, .api, .apiBatch: context?.flush()
            }
        }

        /// Request `request` was answered: each of its messages acknowledged, but `refusals`.
        private func answered(_ request: UInt64, _ ok: Bool, refusals: Int = 0) {
            guard let sentAt = inFlight.removeValue(forKey: request) else { return }
            let messages = batchSizes.removeValue(forKey: request) ?? 1
            for index in 0..<messages { run.answered(acknowledged: ok && index >= refusals, sentAt: sentAt) }
        }

        // MARK: /ws

        func opened(_ socket: BenchSocket) {}

        func received(_ socket: BenchSocket, payload: ByteBufferView) {
            // Replies' keys are sorted: `type` comes last. Within JSON strings a quote is
            // escaped, so `"ref":` is the key wherever it is found.
            let ok = payload.ends(with: Self.publishedSuffix)
            guard ok || payload.ends(with: Self.errorSuffix), let request = payload.integer(after: Self.refKey) else { return }
            answered(request, ok)
        }

        func readComplete(_ socket: BenchSocket) { pump() }
        func closed(_ socket: BenchSocket) {}

        private static let publishedSuffix = Array(#""type":"published"}"#.utf8)
        private static let errorSuffix = Array(#""type":"error"}"#.utf8)
        private static let refKey = Array(#""ref":"#.utf8)

        // MARK: HTTP

        func handlerAdded(context: ChannelHandlerContext) {
            self.context = context
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                status = head.status
                answerBody.removeAll(keepingCapacity: true)
            case .body(let part):
                if transport == .apiBatch { answerBody.append(contentsOf: part.readableBytesView) }
            case .end:
                let ok = status == (transport == .http ? .created : .ok)
                answered(nextAnswer, ok, refusals: transport == .apiBatch ? Self.occurrences(of: Self.errorKey, in: answerBody) : 0)
                nextAnswer += 1
                status = nil
            }
        }

        func channelReadComplete(context: ChannelHandlerContext) { pump() }

        private static let errorKey = Array(#""error":"#.utf8)

        /// How often `key` appears in `bytes`.
        private static func occurrences(of key: [UInt8], in bytes: [UInt8]) -> Int {
            guard bytes.count >= key.count else { return 0 }
            var count = 0
            var index = 0
            while index <= bytes.count - key.count {
                if bytes[index] == key[0], bytes[index..<index + key.count].elementsEqual(key) {
                    count += 1
                    index += key.count
                } else {
                    index += 1
                }
            }
            return count
        }
    }
}

extension ByteBufferView {
    fileprivate func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && self.suffix(suffix.count).elementsEqual(suffix)
    }

    /// The unsigned integer written right after the first `key`, if any. A plain scan over the
    /// bytes: the generic `firstRange(of:)` made the generator, not the server, the bottleneck.
    fileprivate func integer(after key: [UInt8]) -> UInt64? {
        withContiguousStorageIfAvailable { bytes -> UInt64? in
            guard bytes.count > key.count else { return nil }
            var start = 0
            search: while start <= bytes.count - key.count {
                for offset in 0..<key.count where bytes[start + offset] != key[offset] {
                    start += 1
                    continue search
                }
                var value: UInt64 = 0
                var index = start + key.count
                while index < bytes.count, index - start - key.count < 19, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                    value = value * 10 + UInt64(bytes[index] - UInt8(ascii: "0"))
                    index += 1
                }
                return index > start + key.count ? value : nil
            }
            return nil
        } ?? nil
    }
}
