// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import SquallSettings

/// `squall config`: check a configuration before serving it, and write the defaults out.
struct Config: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check Squall's configuration, or print every option at its default.",
        subcommands: [Check.self, Defaults.self, Reference.self]
    )

    /// `squall config check [serve's options]`: validates as `serve` would and prints every
    /// value with its source; exits non-zero on any error.
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the configuration squall serve would run with, and print each value with its source.",
            discussion: "Takes everything squall serve takes (--config FILE, flags, SQUALL_* variables). Token keys are loaded too."
        )

        @Argument(parsing: .allUnrecognized, help: .hidden)
        var options: [String] = []

        func run() async throws {
            let settings = try await Serve.settings(options, ProcessInfo.processInfo.environment)
            do {
                try await settings.loadKeys()
            } catch {
                throw ValidationError(error.description)
            }
            print(OptionReference.effective(settings))
            print("configuration OK")
        }
    }

    /// `squall config defaults`: a complete, commented configuration file of every option at
    /// its default (Centrifugo's `defaultconfig`), which `config check` accepts unchanged.
    struct Defaults: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a YAML configuration file of every option at its default.")

        func run() {
            print(OptionReference.defaultsFile, terminator: "")
        }
    }

    /// `squall config reference readme|configuration`: the option tables the docs embed
    /// (scripts/generate-options writes them in).
    struct Reference: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the option table of README.md or docs/configuration.md.", shouldDisplay: false)

        @Argument(help: "readme or configuration")
        var table: String

        func run() throws {
            switch table {
            case "readme": print(OptionReference.readmeTable)
            case "configuration": print(OptionReference.configurationTable)
            default: throw ValidationError("readme or configuration")
            }
        }
    }
}
