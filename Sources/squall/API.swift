// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import SquallSettings

/// `squall api`: calls a running server's API (docs/openapi.yaml) with the configured key, for
/// operators and scripts. Each subcommand prints the server's JSON answer; a refusal goes to
/// stderr and exits 1.
struct API: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Call a running server's API (publish, disconnect, presence, …) with the configured key.",
        discussion: """
            The server's address and its first api-key come from what squall serve would read — --config FILE, \
            --host, --port, --api-key or their SQUALL_* variables — unless --url and --key say otherwise. \
            Example: squall api publish news "hello" --config squall.yaml
            """,
        subcommands: [
            Publish.self, Broadcast.self, Disconnect.self, Unsubscribe.self, Presence.self, History.self, HistoryRemove.self, Channels.self,
            Info.self, Batch.self,
        ]
    )

    /// Where the server is and the key to show it, for every subcommand.
    struct Target: ParsableArguments {
        @Option(help: "The server, as http(s)://HOST:PORT; default: the configured host and port.")
        var url: String?

        @Option(help: "The API key; default: the first configured api-key.")
        var key: String?

        @Argument(parsing: .allUnrecognized, help: .hidden)
        var options: [String] = []

        /// Sends `command` with `body` and prints the answer.
        func call(_ command: String, _ body: [String: Any]) async throws {
            let settings = try await Serve.settings(options, ProcessInfo.processInfo.environment)
            let configuration = settings.configuration
            guard let key = key ?? configuration.apiKeys.first else {
                throw ValidationError("no API key: give --key, or configure api-key as squall serve reads it")
            }
            let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
            let base = url ?? "\(configuration.tls == nil ? "http" : "https")://\(host):\(configuration.port)"
            var request = HTTPClientRequest(url: "\(base)/api/\(command)")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "apikey \(key)")
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])))
            let response: HTTPClientResponse
            let answer: ByteBuffer
            do {
                response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
                answer = try await response.body.collect(upTo: 64 << 20)
            } catch {
                throw ValidationError("cannot reach \(base): \(error)")
            }
            let text = String(buffer: answer)
            guard (200..<300).contains(response.status.code) else {
                FileHandle.standardError.write(Data("\(response.status.code) \(text)\n".utf8))
                throw ExitCode.failure
            }
            print(text)
        }
    }

    struct Publish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Publish a message: squall api publish news 'hello'.")
        @Argument(help: "The channel.") var channel: String
        @Argument(help: "The message; with --base64, its bytes in base64.") var data: String
        @Flag(help: "The message is base64 of binary bytes.") var base64 = false
        @Option(help: "An idempotency key: a retry with it publishes once.") var idempotencyKey: String?
        @OptionGroup var target: Target

        func run() async throws {
            var body: [String: Any] = ["channel": channel, "data": data]
            if base64 { body["encoding"] = "base64" }
            if let idempotencyKey { body["idempotency_key"] = idempotencyKey }
            try await target.call("publish", body)
        }
    }

    struct Broadcast: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Publish one message to many channels: squall api broadcast 'hi' --channel a --channel b.")
        @Argument(help: "The message; with --base64, its bytes in base64.") var data: String
        @Option(name: .customLong("channel"), help: "A channel to publish to; repeatable.") var channels: [String] = []
        @Flag(help: "The message is base64 of binary bytes.") var base64 = false
        @Option(help: "An idempotency key, per channel.") var idempotencyKey: String?
        @OptionGroup var target: Target

        func run() async throws {
            var body: [String: Any] = ["channels": channels, "data": data]
            if base64 { body["encoding"] = "base64" }
            if let idempotencyKey { body["idempotency_key"] = idempotencyKey }
            try await target.call("broadcast", body)
        }
    }

    struct Disconnect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Close every connection of a user, on every node: squall api disconnect alice.")
        @Argument(help: "The user id (a token's sub).") var user: String
        @Option(help: "The close code, 4000–4999 (default 4500: do not reconnect).") var code: Int?
        @Option(help: "The close reason, ASCII, at most 100 characters.") var reason: String?
        @OptionGroup var target: Target

        func run() async throws {
            var body: [String: Any] = ["user": user]
            if let code { body["code"] = code }
            if let reason { body["reason"] = reason }
            try await target.call("disconnect", body)
        }
    }

    struct Unsubscribe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take a user off a channel, on every node: squall api unsubscribe alice news.")
        @Argument(help: "The user id.") var user: String
        @Argument(help: "The channel.") var channel: String
        @OptionGroup var target: Target

        func run() async throws {
            try await target.call("unsubscribe", ["user": user, "channel": channel])
        }
    }

    struct Presence: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Who is subscribed to a channel: squall api presence news [--stats].")
        @Argument(help: "The channel.") var channel: String
        @Flag(help: "Only how many clients and distinct users.") var stats = false
        @Option(help: "The next page: the `next` of the page before.") var after: String?
        @OptionGroup var target: Target

        func run() async throws {
            var body: [String: Any] = ["channel": channel]
            if let after { body["after"] = after }
            try await target.call(stats ? "presence_stats" : "presence", body)
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A channel's retained messages: squall api history news --limit 10.")
        @Argument(help: "The channel.") var channel: String
        @Option(help: "Most messages, 1–1000 (default 100).") var limit: Int?
        @Option(help: "Only those after this position, EPOCH:OFFSET.") var since: String?
        @OptionGroup var target: Target

        func run() async throws {
            var body: [String: Any] = ["channel": channel]
            if let limit { body["limit"] = limit }
            if let since { body["since"] = since }
            try await target.call("history", body)
        }
    }

    struct HistoryRemove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "history-remove", abstract: "Forget a channel's retained messages, keeping its position: squall api history-remove news.")
        @Argument(help: "The channel.") var channel: String
        @OptionGroup var target: Target

        func run() async throws {
            try await target.call("history_remove", ["channel": channel])
        }
    }

    struct Channels: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The channels with subscribers on the node: squall api channels 'chat:*'.")
        @Argument(help: "Only names this pattern matches; * stands for any run of characters.") var pattern: String?
        @OptionGroup var target: Target

        func run() async throws {
            try await target.call("channels", pattern.map { ["pattern": $0] } ?? [:])
        }
    }

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every node's figures: squall api info.")
        @OptionGroup var target: Target

        func run() async throws {
            try await target.call("info", [:])
        }
    }

    struct Batch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Many commands in one request: squall api batch commands.json (- reads stdin).",
            discussion: #"The file holds the commands as the API takes them: [{"method": "publish", "params": {"channel": "news", "data": "hi"}}, …]."#)
        @Argument(help: "A JSON file of commands; - for stdin.") var file: String
        @OptionGroup var target: Target

        func run() async throws {
            let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: URL(fileURLWithPath: file))
            guard let commands = try? JSONSerialization.jsonObject(with: data) as? [Any] else {
                throw ValidationError("\(file) does not hold a JSON array of commands")
            }
            try await target.call("batch", ["commands": commands])
        }
    }
}
