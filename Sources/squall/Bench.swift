// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import Squall
import SquallBench

/// `squall bench`: load generators for any `ws://` or `wss://` server with the seed's broadcast contract.
/// Build it in release (`swift build -c release`) before measuring anything.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure a WebSocket broadcast server on this machine (loopback only).",
        subcommands: [Fanout.self, Latency.self, Handshakes.self, Idle.self, Publish.self, Floor.self]
    )

    /// The URL every benchmark takes; loopback only, since load goes nowhere else.
    struct Target: ParsableArguments {
        @Option(help: "The broadcast endpoint, e.g. ws://127.0.0.1:8000/msg; wss:// for TLS, certificate not checked. 127.0.0.0/8, localhost or [::1] only.")
        var url = "ws://127.0.0.1:8000/msg"

        @Flag(help: "Print the result as one JSON object.")
        var json = false

        func report(_ result: some Encodable & CustomStringConvertible) throws {
            try Bench.report(result, json: json)
        }

        func resolve() throws -> BenchTarget {
            try Bench.resolve(url)
        }
    }

    /// Prints `result`, as one JSON object when `json`.
    static func report(_ result: some Encodable & CustomStringConvertible, json: Bool) throws {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            print(result)
        }
    }

    /// `url` as a target on this machine, or the error that says why not.
    static func resolve(_ url: String) throws -> BenchTarget {
        guard let target = BenchTarget(url: url) else {
            throw ValidationError("--url must be ws:// or wss://HOST:PORT/PATH on this machine: benchmarks send load to 127.0.0.1, localhost or [::1] only")
        }
        return target
    }

    struct Fanout: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "S subscribers, one publisher, M messages of B bytes, a bounded window in flight.")
        @OptionGroup var target: Target
        @Option(help: "Subscribers (1–20000).") var subscribers = 100
        @Option(help: "Messages to publish (1–10000000).") var messages = 10_000
        @Option(help: "Bytes per message (1–1048576).") var size = 64
        @Option(help: "Most messages in flight (sent but not yet received by every subscriber).") var window = 64
        @Option(help: "Give up after this many seconds (1–600).") var timeout = 120
        @Option(help: "The server's process id, to report its CPU time during the run (Linux).") var serverPid: Int32?

        func validate() throws {
            try check(subscribers, in: 1...20_000, "subscribers")
            try check(messages, in: 1...10_000_000, "messages")
            try check(size, in: 1...(1 << 20), "size")
            try check(window, in: 1...100_000, "window")
            try check(timeout, in: 1...600, "timeout")
        }

        func run() async throws {
            try target.report(
                try await Benchmarks.fanout(
                    target.resolve(), subscribers: subscribers, messages: messages, size: size, window: window, timeout: .seconds(timeout), serverPID: serverPid
                ))
        }
    }

    struct Latency: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delivery latency p50/p99/max at a fixed publish rate.")
        @OptionGroup var target: Target
        @Option(help: "Subscribers (1–20000).") var subscribers = 1000
        @Option(help: "Messages per second (1–100000).") var rate = 20
        @Option(help: "Seconds to publish for (1–600).") var duration = 10
        @Option(help: "Bytes per message (20–1048576).") var size = 64
        @Option(help: "The server's process id, to report its CPU time per delivery (Linux).") var serverPid: Int32?

        func validate() throws {
            try check(subscribers, in: 1...20_000, "subscribers")
            try check(rate, in: 1...100_000, "rate")
            try check(duration, in: 1...600, "duration")
            try check(size, in: 20...(1 << 20), "size")
        }

        func run() async throws {
            try target.report(
                try await Benchmarks.latency(
                    target.resolve(), subscribers: subscribers, rate: rate, duration: .seconds(duration), size: size, serverPID: serverPid))
        }
    }

    struct Handshakes: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "WebSocket handshakes per second.")
        @OptionGroup var target: Target
        @Option(help: "Handshakes (1–1000000).") var count = 2000
        @Option(help: "Handshakes in progress at once (1–1000).") var concurrency = 32
        @Option(help: "The server's process id, to report its CPU time per handshake.") var serverPid: Int32?

        func validate() throws {
            try check(count, in: 1...1_000_000, "count")
            try check(concurrency, in: 1...1000, "concurrency")
        }

        func run() async throws {
            try target.report(try await Benchmarks.handshakes(target.resolve(), count: count, concurrency: concurrency, serverPID: serverPid))
        }
    }

    struct Idle: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Server memory per idle connection, CPU while they idle, and what is left once they close (reads /proc/PID).")
        @OptionGroup var target: Target
        @Option(help: "Connections to open (1–50000).") var connections = 10_000
        @Option(help: "The server's process id.") var serverPid: Int32
        @Flag(help: "Offer permessage-deflate as browsers do; fail unless the server accepts it.") var deflate = false
        @Option(help: "Seconds to hold the connections open, answering pings, before closing them (1–600).") var hold = 1

        func validate() throws {
            try check(connections, in: 1...50_000, "connections")
            try check(hold, in: 1...600, "hold")
        }

        func run() async throws {
            var target = try target.resolve()
            target.offersDeflate = deflate
            try self.target.report(try await Benchmarks.idle(target, count: connections, serverPID: serverPid, hold: .seconds(hold)))
        }
    }
}

extension Bench {
    struct Publish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Acknowledged publishes/s and publish-to-delivery latency against Squall (run it with --publish-rate off).",
            discussion: """
                P connections publish M messages of B bytes to one channel over /ws (--url, the \
                squall.v1 endpoint) or over HTTP (POST /channels/CHANNEL/messages on the same host \
                and port); one subscriber on /msg/CHANNEL times each delivery.
                """
        )
        @Option(
            help: """
                Squall's /ws endpoint; HTTP and /msg are reached on its host and port. 127.0.0.0/8, localhost or [::1] only. \
                Repeat it for several nodes of one system: publishers take turns among them.
                """
        )
        var url: [String] = []
        @Option(help: "The node whose /msg the subscriber times deliveries on. [default: the first --url]")
        var subscriberUrl: String?
        @Flag(help: "Print the result as one JSON object.") var json = false
        @Option(help: "ws, http, api (POST /api/publish) or api-batch (POST /api/batch).") var transport = PublishTransport.ws
        @Option(help: "The server's API key, for api and api-batch.") var apiKey: String?
        @Option(help: "Publishes per api-batch request (1–1000).") var batch = 100
        @Option(help: "Publishing connections (1–1000).") var publishers = 16
        @Option(help: "Messages to publish in all (1–10000000).") var messages = 100_000
        @Option(help: "Bytes per message (20–65536).") var size = 64
        @Option(help: "Publishes in flight per /ws connection (1–10000); HTTP has one.") var window = 16
        @Option(help: "The channel to publish to.") var channel = "bench-publish"
        @Option(help: "Give up after this many seconds (1–600).") var timeout = 120
        @Option(help: "The server's process id, to report its CPU time per publish (Linux).") var serverPid: Int32?
        @Flag(help: "No subscriber: time acknowledgements only (HTTP), against any server with the route, e.g. squall bench floor.")
        var noSubscriber = false

        func validate() throws {
            if noSubscriber, transport == .ws { throw ValidationError("--no-subscriber is for the HTTP transports") }
            try check(publishers, in: 1...1000, "publishers")
            try check(messages, in: 1...10_000_000, "messages")
            try check(size, in: 20...65_536, "size")
            try check(window, in: 1...10_000, "window")
            try check(timeout, in: 1...600, "timeout")
            try check(batch, in: 1...1000, "batch")
            guard (try? ChannelName(channel)) != nil else { throw ValidationError("--channel is not a valid channel name") }
        }

        func run() async throws {
            let urls = url.isEmpty ? ["ws://127.0.0.1:8000/ws"] : url
            let targets = try urls.map { try Bench.resolve($0) }
            guard let first = targets.first else { throw ValidationError("--url names no node") }
            try Bench.report(
                try await Benchmarks.publish(
                    first, moreTargets: Array(targets.dropFirst()), subscriberTarget: try subscriberUrl.map { try Bench.resolve($0) },
                    transport: transport, publishers: publishers, messages: messages, size: size, window: window, channel: channel,
                    timeout: .seconds(timeout), serverPID: serverPid, apiKey: apiKey, batch: batch, timesDeliveries: !noSubscriber
                ),
                json: json
            )
        }
    }
}

extension PublishTransport: ExpressibleByArgument {}

extension Bench {
    struct Floor: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve an empty POST /channels/NAME/messages (201) on 127.0.0.1: the framework's floor, for squall bench publish --no-subscriber.",
            discussion:
                "hummingbird: an empty Hummingbird handler, the framework of Squall's HTTP routes; nio: SwiftNIO's HTTP/1.1 pipeline answering in the event loop."
        )
        @Option(help: "hummingbird or nio.") var kind = FloorServer.Kind.hummingbird
        @Option(help: "The port on 127.0.0.1.") var port = 8200

        func validate() throws {
            try check(port, in: 1...65_535, "port")
        }

        func run() async throws {
            try await FloorServer.run(kind, port: port)
        }
    }
}

extension FloorServer.Kind: ExpressibleByArgument {}

private func check(_ value: Int, in range: ClosedRange<Int>, _ name: String) throws {
    guard range.contains(value) else { throw ValidationError("--\(name) must be between \(range.lowerBound) and \(range.upperBound)") }
}
