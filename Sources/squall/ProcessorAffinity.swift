// SPDX-License-Identifier: Apache-2.0

import Foundation

/// How many CPUs this process may run on. On Linux that is its affinity mask (`Cpus_allowed` in
/// `/proc/self/status`), so a server started under `taskset -c 0` (or in a cpuset) runs one
/// event loop, not one per core of the machine fighting over the one it has; elsewhere, every
/// active core.
enum ProcessorAffinity {
    static var cpuCount: Int {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") })
        {
            let count = line.dropFirst("Cpus_allowed:".count).reduce(0) { count, digit in
                count + (digit.hexDigitValue?.nonzeroBitCount ?? 0)
            }
            if count > 0 { return count }
        }
        return ProcessInfo.processInfo.activeProcessorCount
    }
}
