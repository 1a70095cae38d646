// SPDX-License-Identifier: Apache-2.0

import Foundation
import PackagePlugin

/// Writes `BuildCommit.swift` — `package let buildCommit: String?`, the git commit Squall's
/// sources are at (with `-dirty` when they differ from it), or `nil` outside a git checkout —
/// before every build, for `squall version`. SwiftPM's checkouts of Squall in an embedder's
/// `.build` are git working copies too.
///
/// Contracts: the file is rewritten only when its text changes, so an unchanged commit costs no
/// recompilation; git is asked with a read-only command and no network.
@main
struct BuildCommit: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "Generated")
        let script = #"""
            mkdir -p "$2"
            commit=$(git -C "$1" rev-parse --short=12 HEAD 2>/dev/null) || commit=
            if [ -n "$commit" ] && ! git -C "$1" diff --quiet HEAD -- Sources Package.swift 2>/dev/null; then commit="$commit-dirty"; fi
            if [ -n "$commit" ]; then value="\"$commit\""; else value=nil; fi
            text="package let buildCommit: String? = $value"
            [ "$(cat "$2/BuildCommit.swift" 2>/dev/null)" = "$text" ] || printf '%s\n' "$text" > "$2/BuildCommit.swift"
            """#
        return [
            .prebuildCommand(
                displayName: "Recording the git commit Squall is built from",
                executable: URL(filePath: "/bin/sh"),
                arguments: ["-c", script, "sh", context.package.directoryURL.path(), output.path()],
                outputFilesDirectory: output)
        ]
    }
}
