// SPDX-License-Identifier: Apache-2.0

import Foundation
import Yams

/// The one setting needed before anything runs — how many event-loop threads to start, which
/// must be decided before Swift concurrency's first job — read synchronously from the command
/// line, the environment or the configuration file, in that order. A value that is missing or
/// does not parse gives `nil` here; `squall serve` then rejects it with a usage error.
public enum EarlySettings {
    public static func threads(arguments: [String], environment: [String: String]) -> Int? {
        let text =
            value(of: "threads", in: arguments) ?? environment[Options.threads.spec.environment ?? ""]
            ?? (value(of: "config", in: arguments) ?? environment[Options.config.spec.environment ?? ""]).flatMap(fileThreads)
        guard let text, case .success(let threads) = Options.threads.parse([text]) else { return nil }
        return threads
    }

    /// `--KEY VALUE` or `--KEY=VALUE`, wherever it stands.
    private static func value(of key: String, in arguments: [String]) -> String? {
        let flag = "--" + key
        if let index = arguments.dropLast().lastIndex(of: flag) { return arguments[index + 1] }
        guard let joined = arguments.last(where: { (argument: String) in argument.hasPrefix(flag + "=") }) else { return nil }
        return String(joined.dropFirst(flag.count + 1))
    }

    private static func fileThreads(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path), data.count <= ConfigFile.maxBytes,
            let text = String(data: data, encoding: .utf8), let root = try? Yams.compose(yaml: text)
        else { return nil }
        return root.mapping?.first { $0.key.scalar?.string == "threads" }?.value.scalar?.string
    }
}
