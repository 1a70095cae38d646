// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

// Both steps must happen before anything uses NIO's shared event-loop group or Swift
// concurrency, hence here, before the arguments are parsed (`squall serve` checks `--threads`
// again with its other options).
//
// 1. One event loop per CPU this process may run on (or `--threads`/`SQUALL_THREADS`).
// 2. Swift concurrency's jobs run on those same loops, not on a pool of its own: a handler's
//    task, a long poll or an SSE stream then needs no thread hop from its socket's loop, and a
//    server pinned to one core runs one thread instead of three taking turns on it.
NIOSingletons.groupLoopCountSuggestion = EventLoopThreads.count(
    arguments: CommandLine.arguments,
    environment: ProcessInfo.processInfo.environment
)
_ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()

// What `@main` does for an AsyncParsableCommand, spelled out: here `SquallCommand.main()` and
// `run()` resolve to their synchronous overloads, which cannot run async subcommands.
do {
    var command = try SquallCommand.parseAsRoot()
    if var asyncCommand = command as? any AsyncParsableCommand {
        try await asyncCommand.runAsync()
    } else {
        try command.run()
    }
} catch {
    SquallCommand.exit(withError: error)
}

extension AsyncParsableCommand {
    /// The command's async `run()`, which a call on an existential would not pick.
    mutating func runAsync() async throws {
        try await run()
    }
}
