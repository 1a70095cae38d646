// SPDX-License-Identifier: Apache-2.0

import Foundation
import Histogram
import NIOCore
import NIOPosix

/// Load generators for any server with the seed's broadcast contract (every text message sent
/// to the endpoint reaches every client on it): Squall's `/msg`, Tornado, `websockets`, `ws`,
/// gorilla. Every run is bounded in count and time and stops by itself. The client runs on one
/// event loop thread and reports its own CPU time, so that a saturated client is not mistaken
/// for a slow server.
public enum Benchmarks {
    /// Fan-out: `subscribers` clients and one publisher; `messages` messages of `size` bytes
    /// sent as fast as the subscribers take them, at most `window` messages in flight.
    public static func fanout(
        _ target: BenchTarget,
        subscribers: Int,
        messages: Int,
        size: Int,
        window: Int = 64,
        timeout: Duration = .seconds(60),
        serverPID: Int32? = nil
    ) async throws -> FanoutResult {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let driver = FanoutDriver(loop: loop, subscribers: subscribers, messages: messages, size: size, window: window)
        let subscribers = try await openSockets(subscribers, to: target, on: loop) { driver }
        let publisher = try await connect(target, on: loop, delegate: driver)
        defer { loop.execute { for socket in subscribers + [publisher] { socket.close() } } }
        let run = try await Measured.run(serverPID: serverPID) {
            try await driver.run(publisher: publisher, timeout: timeout)
        }
        let delivered = try await loop.submit { driver.delivered }.get()
        return FanoutResult(
            subscribers: subscribers.count,
            messages: messages,
            size: size,
            delivered: delivered,
            seconds: run.seconds,
            clientCPUSeconds: run.clientCPUSeconds,
            serverCPUSeconds: run.serverCPUSeconds
        )
    }

    /// Latency: `subscribers` clients; the publisher sends `rate` messages per second for
    /// `duration`; every delivery's delay from send to receipt goes into an HdrHistogram.
    public static func latency(
        _ target: BenchTarget,
        subscribers: Int,
        rate: Int,
        duration: Duration,
        size: Int = 64,
        serverPID: Int32? = nil
    ) async throws -> LatencyResult {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let driver = LatencyDriver(size: max(size, 20))
        let sockets = try await openSockets(subscribers, to: target, on: loop) { driver }
        let publisher = try await connect(target, on: loop, delegate: driver)
        defer { loop.execute { for socket in sockets + [publisher] { socket.close() } } }
        try await driver.warmUp(publisher: publisher, subscribers: subscribers, on: loop)
        let count = Int((Double(rate) * duration.seconds).rounded())  // trap-ok: squall bench checks rate and duration
        let interval = TimeAmount.nanoseconds(Int64(1e9 / Double(max(rate, 1))))  // trap-ok: at most 1e9
        // Measured from the first publish to the last delivery: the warm-up and connection
        // set-up are not what a quiet chat costs.
        let run = try await Measured.run(serverPID: serverPID) {
            try await driver.publish(count, every: interval, on: publisher, loop: loop)
            let deadline = ContinuousClock.now + .seconds(5)
            while try await loop.submit({ driver.histogram.totalCount }).get() < UInt64(count * subscribers), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        let histogram = try await loop.submit { driver.histogram }.get()
        return LatencyResult(
            subscribers: subscribers,
            rate: rate,
            expected: count * subscribers,
            delivered: Int(histogram.totalCount),
            p50: .microseconds(histogram.valueAtPercentile(50)),
            p99: .microseconds(histogram.valueAtPercentile(99)),
            max: .microseconds(histogram.max),
            seconds: run.seconds,
            clientCPUSeconds: run.clientCPUSeconds,
            serverCPUSeconds: run.serverCPUSeconds
        )
    }

    /// Handshakes: `count` WebSocket handshakes, `concurrency` in progress at any moment (a new
    /// one starts as each completes), each closed as soon as it opens (``HandshakeFlood``). With
    /// `serverPID`, the server's CPU time over the run is reported too: its cost per handshake,
    /// whatever saturates.
    public static func handshakes(_ target: BenchTarget, count: Int, concurrency: Int = 32, serverPID: Int32? = nil) async throws -> HandshakeResult {
        let deadline = ContinuousClock.now + .seconds(300)
        let run = try await Measured.run(serverPID: serverPID) {
            if target.secure {
                try await secureHandshakes(target, count: count, concurrency: concurrency, deadline: deadline)
            } else {
                let flood = HandshakeFlood(target: target, count: count, concurrency: concurrency, deadline: deadline)
                // The flood blocks its thread; Swift's cooperative pool is not the place for that.
                try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
                    Thread.detachNewThread { done.resume(with: Result { try flood.run() }) }
                }
            }
        }
        return HandshakeResult(count: count, seconds: run.seconds, clientCPUSeconds: run.clientCPUSeconds, serverCPUSeconds: run.serverCPUSeconds)
    }

    /// `wss://` handshakes, TLS and then WebSocket, on NIO channels: ``HandshakeFlood``'s plain
    /// sockets cannot speak TLS, and next to a TLS handshake's cryptography a channel's set-up
    /// is small. `concurrency` workers each open, wait for the 101 and close, until `count`.
    private static func secureHandshakes(_ target: BenchTarget, count: Int, concurrency: Int, deadline: ContinuousClock.Instant) async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let workers = min(concurrency, count)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<workers {
                // Worker `w` makes every `workers`-th handshake: `count` in all.
                let share = count / workers + (worker < count % workers ? 1 : 0)
                group.addTask {
                    for _ in 0..<share {
                        guard ContinuousClock.now < deadline else { throw BenchError.timedOut }
                        let socket = try await connect(target, on: loop, delegate: QuietDelegate())
                        loop.execute { socket.close() }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Idle connections: opens `count`, holds them for `hold` while answering the server's pings,
    /// then closes them all. Reports the server's resident memory (`/proc/PID/status`) and open
    /// descriptors (`/proc/PID/fd`) before, while held and after closing; its CPU time while
    /// held (what pings and sweeps cost: nothing else happens); and the pings answered.
    public static func idle(_ target: BenchTarget, count: Int, serverPID: Int32, hold: Duration = .seconds(1)) async throws -> IdleResult {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let kibBefore = try residentKiB(of: serverPID)
        let descriptorsBefore = try descriptors(of: serverPID)
        let sockets = try await openSockets(count, to: target, on: loop) { QuietDelegate() }
        let pingsBefore = try await loop.submit { sockets.reduce(0) { $0 + $1.pingsAnswered } }.get()
        let held = try await Measured.run(serverPID: serverPID) { try await Task.sleep(for: hold) }
        let pings = try await loop.submit { sockets.reduce(0) { $0 + $1.pingsAnswered } }.get() - pingsBefore
        let kibHeld = try residentKiB(of: serverPID)
        let descriptorsHeld = try descriptors(of: serverPID)
        try await loop.submit { for socket in sockets { socket.close() } }.get()
        // The server closes its side as each close frame arrives: wait (bounded) until its
        // descriptors are back where they started, then read what memory it kept.
        let deadline = ContinuousClock.now + .seconds(30)
        while try descriptors(of: serverPID) > descriptorsBefore, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        try await Task.sleep(for: .seconds(1))
        return IdleResult(
            connections: sockets.count,
            serverKiBBefore: kibBefore,
            serverKiBAfter: kibHeld,
            serverKiBClosed: try residentKiB(of: serverPID),
            serverDescriptorsBefore: descriptorsBefore,
            serverDescriptorsHeld: descriptorsHeld,
            serverDescriptorsClosed: try descriptors(of: serverPID),
            heldSeconds: held.seconds,
            serverCPUSecondsHeld: held.serverCPUSeconds ?? 0,
            pingsAnswered: pings
        )
    }

    /// How many descriptors a process has open, from `/proc/PID/fd`.
    static func descriptors(of pid: Int32) throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count
    }

    /// User plus system CPU time of a process, from `/proc/PID/stat`.
    static func cpuSeconds(of pid: Int32) throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let fields = stat[(stat.lastIndex(of: ")").map { stat.index(after: $0) } ?? stat.startIndex)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else {
            throw CocoaError(.fileReadCorruptFile)
        }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// VmRSS of a process, in KiB.
    static func residentKiB(of pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { throw CocoaError(.fileReadCorruptFile) }
        return kib
    }
}

/// A fan-out run.
public struct FanoutResult: Sendable, Encodable, CustomStringConvertible {
    public let subscribers: Int
    public let messages: Int
    public let size: Int
    /// Messages subscribers received (the publisher's own copies not counted).
    public let delivered: Int
    public let seconds: Double
    public let clientCPUSeconds: Double
    /// The server's CPU time during the measured run, when its process id was given.
    public let serverCPUSeconds: Double?

    /// Deliveries expected: every subscriber gets every message.
    public var expected: Int { subscribers * messages }
    public var deliveriesPerSecond: Double { Double(delivered) / seconds }

    public var description: String {
        """
        fan-out: \(subscribers) subscribers × \(messages) messages of \(size) B
          delivered \(delivered)/\(expected) in \(format(seconds)) s = \(Int(deliveriesPerSecond)) deliveries/s
          client CPU \(format(clientCPUSeconds)) s (\(Int(100 * clientCPUSeconds / seconds)) % of one core)\(serverCPUSeconds.map { "\n  server CPU \(format($0)) s = \(format(1e6 * $0 / Double(max(delivered, 1)))) µs per delivery" } ?? "")
        """
    }
}

/// A latency run.
public struct LatencyResult: Sendable, Encodable, CustomStringConvertible {
    public let subscribers: Int
    public let rate: Int
    public let expected: Int
    public let delivered: Int
    public let p50: Duration
    public let p99: Duration
    public let max: Duration
    /// From the first publish to the last delivery.
    public let seconds: Double
    public let clientCPUSeconds: Double
    /// The server's CPU time over ``seconds``, when its process id was given.
    public let serverCPUSeconds: Double?

    enum CodingKeys: String, CodingKey {
        case subscribers, rate, expected, delivered, p50Milliseconds, p99Milliseconds, maxMilliseconds, seconds, clientCPUSeconds, serverCPUSeconds
    }

    /// Encodes the percentiles in milliseconds.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(subscribers, forKey: .subscribers)
        try container.encode(rate, forKey: .rate)
        try container.encode(expected, forKey: .expected)
        try container.encode(delivered, forKey: .delivered)
        try container.encode(p50.seconds * 1000, forKey: .p50Milliseconds)
        try container.encode(p99.seconds * 1000, forKey: .p99Milliseconds)
        try container.encode(max.seconds * 1000, forKey: .maxMilliseconds)
        try container.encode(seconds, forKey: .seconds)
        try container.encode(clientCPUSeconds, forKey: .clientCPUSeconds)
        try container.encodeIfPresent(serverCPUSeconds, forKey: .serverCPUSeconds)
    }

    public var description: String {
        """
        latency: \(subscribers) subscribers × \(rate) msg/s
          delivered \(delivered)/\(expected); p50 \(format(p50.seconds * 1000)) ms, p99 \(format(p99.seconds * 1000)) ms, max \(format(max.seconds * 1000)) ms
          client CPU \(format(clientCPUSeconds)) s\(serverCPUSeconds.map { "\n  server CPU \(format($0)) s = \(format(1e6 * $0 / Double(Swift.max(delivered, 1)))) µs per delivery" } ?? "")
        """
    }
}

/// A handshake run.
public struct HandshakeResult: Sendable, Encodable, CustomStringConvertible {
    public let count: Int
    public let seconds: Double
    public let clientCPUSeconds: Double
    /// The server's CPU time during the run, when its process id was given.
    public let serverCPUSeconds: Double?

    public var perSecond: Double { Double(count) / seconds }

    public var description: String {
        "handshakes: \(count) in \(format(seconds)) s = \(Int(perSecond))/s; client CPU \(format(clientCPUSeconds)) s"
            + (serverCPUSeconds.map { "; server CPU \(format(1e6 * $0 / Double(max(count, 1)))) µs per handshake" } ?? "")
    }
}

/// An idle-connections run.
public struct IdleResult: Sendable, Encodable, CustomStringConvertible {
    public let connections: Int
    public let serverKiBBefore: Int
    /// While every connection was open.
    public let serverKiBAfter: Int
    /// Once every connection had closed.
    public let serverKiBClosed: Int
    public let serverDescriptorsBefore: Int
    public let serverDescriptorsHeld: Int
    public let serverDescriptorsClosed: Int
    public let heldSeconds: Double
    /// The server's CPU time while the connections were held open and idle.
    public let serverCPUSecondsHeld: Double
    /// Pings the server sent while they were held, all answered.
    public let pingsAnswered: Int

    public var kibPerConnection: Double { Double(serverKiBAfter - serverKiBBefore) / Double(max(connections, 1)) }

    public var description: String {
        """
        idle: \(connections) connections; server RSS \(serverKiBBefore) → \(serverKiBAfter) KiB = \(format(kibPerConnection)) KiB per connection
          held \(format(heldSeconds)) s: server CPU \(format(serverCPUSecondsHeld)) s, \(pingsAnswered) pings answered\(pingsAnswered > 0 ? " (\(format(1e6 * serverCPUSecondsHeld / Double(pingsAnswered))) µs of server CPU per ping)" : "")
          closed: server RSS \(serverKiBClosed) KiB, descriptors \(serverDescriptorsBefore) → \(serverDescriptorsHeld) → \(serverDescriptorsClosed)
        """
    }
}

// MARK: - Drivers (each lives on one event loop)

/// Counts deliveries and keeps at most `window` messages in flight. Touched only on `loop`.
private final class FanoutDriver: BenchSocketDelegate, @unchecked Sendable {
    let loop: any EventLoop
    let subscriberCount: Int
    let total: Int
    let window: Int
    let payload: [UInt8]
    private(set) var delivered = 0
    private var sent = 0
    private var publisher: BenchSocket?
    private var warmedUp = Set<ObjectIdentifier>()
    private var measuring = false
    private var finished: EventLoopPromise<Void>?

    init(loop: any EventLoop, subscribers: Int, messages: Int, size: Int, window: Int) {
        self.loop = loop
        self.subscriberCount = subscribers
        self.total = messages
        self.window = max(window, 1)
        self.payload = [UInt8(ascii: "d")] + Array(repeating: UInt8(ascii: "x"), count: max(size - 1, 0))
    }

    /// Warms up (every subscriber must have received a message, so all are subscribed), then
    /// sends everything and waits for the last delivery or `timeout`. A warm-up that does not
    /// finish in time is an error, not a run with nothing delivered.
    func run(publisher: BenchSocket, timeout: Duration) async throws {
        let done = loop.makePromise(of: Void.self)
        try await loop.submit {
            self.publisher = publisher
            self.finished = done
            self.warmUp()
        }.get()
        let timer = loop.scheduleTask(in: TimeAmount(timeout)) {
            self.finish(failing: self.measuring ? nil : BenchError.warmUpTimedOut)
        }
        defer { timer.cancel() }
        try await done.futureResult.get()
    }

    /// Ends the run once: stops the warm-up and releases `run`.
    private func finish(failing error: (any Error)? = nil) {
        guard let finished else { return }
        self.finished = nil
        if let error { finished.fail(error) } else { finished.succeed() }
    }

    private func warmUp() {
        guard !measuring, finished != nil else { return }
        publisher?.sendText(Array("warm-up".utf8), flush: true)
        loop.scheduleTask(in: .milliseconds(200)) { self.warmUp() }
    }

    func opened(_ socket: BenchSocket) {}

    func received(_ socket: BenchSocket, payload: ByteBufferView) {
        guard socket !== publisher else { return }
        if payload.first == UInt8(ascii: "d") {
            delivered += 1
        } else if !measuring {
            warmedUp.insert(ObjectIdentifier(socket))
        }
    }

    func readComplete(_ socket: BenchSocket) {
        if !measuring {
            guard warmedUp.count == subscriberCount else { return }
            measuring = true
        }
        if delivered >= total * subscriberCount {
            finish()
            return
        }
        pump()
    }

    /// Sends as many messages as the window allows, in one flush.
    private func pump() {
        guard let publisher else { return }
        let inFlight = sent - delivered / subscriberCount
        let allowed = min(window - inFlight, total - sent)
        guard allowed > 0 else { return }
        for index in 0..<allowed {
            publisher.sendText(payload, flush: index == allowed - 1)
        }
        sent += allowed
    }

    func closed(_ socket: BenchSocket) {}
}

/// Stamps each message with its send time and records each delivery's delay. Touched only on
/// its event loop.
private final class LatencyDriver: BenchSocketDelegate, @unchecked Sendable {
    let size: Int
    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000)
    private var warmedUp = Set<ObjectIdentifier>()
    private var publisher: BenchSocket?
    private var remaining = 0

    init(size: Int) {
        self.size = size
    }

    func warmUp(publisher: BenchSocket, subscribers: Int, on loop: any EventLoop) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while try await loop.submit({ self.warmedUp.count }).get() < subscribers {
            guard ContinuousClock.now < deadline else { throw BenchError.warmUpTimedOut }
            try await loop.submit {
                self.publisher = publisher
                publisher.sendText(Array("warm-up".utf8), flush: true)
            }.get()
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Sends `count` stamped messages, one per `interval`; completes after the last.
    func publish(_ count: Int, every interval: TimeAmount, on publisher: BenchSocket, loop: any EventLoop) async throws {
        let sent = loop.makePromise(of: Void.self)
        loop.execute {
            self.remaining = count
            loop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { task in
                self.publish(on: publisher)
                self.remaining -= 1
                if self.remaining <= 0 {
                    task.cancel()
                    sent.succeed()
                }
            }
        }
        try await sent.futureResult.get()
    }

    private func publish(on publisher: BenchSocket) {
        var stamp = Array(String(NIODeadline.now().uptimeNanoseconds).utf8)
        stamp = Array(repeating: UInt8(ascii: "0"), count: max(0, 19 - stamp.count)) + stamp
        publisher.sendText([UInt8(ascii: "t")] + stamp + Array(repeating: UInt8(ascii: "x"), count: size - 20), flush: true)
    }

    func opened(_ socket: BenchSocket) {}

    func received(_ socket: BenchSocket, payload: ByteBufferView) {
        guard socket !== publisher else { return }
        guard payload.first == UInt8(ascii: "t"), payload.count >= 20 else {
            warmedUp.insert(ObjectIdentifier(socket))
            return
        }
        var sentAt: UInt64 = 0
        for byte in payload.dropFirst().prefix(19) { sentAt = sentAt * 10 + UInt64(byte - 48) }
        let now = NIODeadline.now().uptimeNanoseconds
        _ = histogram.record(now > sentAt ? (now - sentAt) / 1000 : 0)
    }

    func readComplete(_ socket: BenchSocket) {}
    func closed(_ socket: BenchSocket) {}
}

/// Ignores everything: for idle runs.
private final class QuietDelegate: BenchSocketDelegate, Sendable {
    func opened(_ socket: BenchSocket) {}
    func received(_ socket: BenchSocket, payload: ByteBufferView) {}
    func readComplete(_ socket: BenchSocket) {}
    func closed(_ socket: BenchSocket) {}
}

/// What a measured run took: wall time, this process's CPU time and, when its process id was
/// given, the server's.
struct Measured {
    let seconds: Double
    let clientCPUSeconds: Double
    let serverCPUSeconds: Double?

    /// Runs `body` and measures it.
    static func run(serverPID: Int32?, _ body: () async throws -> Void) async throws -> Measured {
        let usage = CPUUsage()
        let serverBefore = try serverPID.map(Benchmarks.cpuSeconds(of:))
        let start = ContinuousClock.now
        try await body()
        let elapsed = ContinuousClock.now - start
        let serverAfter = try serverPID.map(Benchmarks.cpuSeconds(of:))
        return Measured(
            seconds: elapsed.seconds,
            clientCPUSeconds: usage.elapsed(),
            serverCPUSeconds: serverAfter.flatMap { after in serverBefore.map { after - $0 } }
        )
    }
}

/// This process's CPU time (user + system) since creation.
struct CPUUsage {
    private let start = CPUUsage.now()

    func elapsed() -> Double { CPUUsage.now() - start }

    private static func now() -> Double {
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

func format(_ value: Double) -> String { String(format: "%.2f", value) }
