// SPDX-License-Identifier: Apache-2.0

import SquallSettings

/// How many event-loop threads this process runs: `threads` from the command line, the
/// environment or the configuration file (``EarlySettings``), else the CPUs it may run on
/// (``ProcessorAffinity``).
enum EventLoopThreads {
    static func count(arguments: [String], environment: [String: String]) -> Int {
        EarlySettings.threads(arguments: arguments, environment: environment) ?? ProcessorAffinity.cpuCount
    }
}
