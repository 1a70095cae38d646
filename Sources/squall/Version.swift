// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Squall

/// `squall version`: the version, the git commit it was built from when that is known (a build
/// in a git checkout; `-dirty` when the sources differed from it), and the Swift that built it.
struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print Squall's version, the git commit and the Swift version it was built from.")

    /// `0.9.0 (Swift 6.3)`: what `--version` and the first log line say.
    static var description: String { "\(Squall.version) (Swift \(swift))" }

    /// The compiler's language version, to the minor: the toolchain names no more than that at
    /// compile time.
    static var swift: String {
        #if compiler(>=7.0)
            "7.0 or later"
        #elseif compiler(>=6.4)
            "6.4"
        #elseif compiler(>=6.3)
            "6.3"
        #else
            "6.2"
        #endif
    }

    func run() {
        print("squall \(Squall.version)")
        print("commit \(buildCommit ?? "unknown")")
        print("swift \(Self.swift)")
    }
}
