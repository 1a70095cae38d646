// SPDX-License-Identifier: Apache-2.0

import ArgumentParser

/// `squall`: the command-line program. `squall` alone is `squall serve`.
struct SquallCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "squall",
        abstract: "Squall, a real-time messaging server: WebSocket broadcast chat and more.",
        version: Version.description,
        subcommands: [Serve.self, Config.self, Token.self, API.self, Bench.self, Version.self],
        defaultSubcommand: Serve.self
    )
}
