// SPDX-License-Identifier: Apache-2.0

import Squall

/// The texts generated from ``Options/all``: `squall serve --help`'s list of options, the
/// tables of README.md and docs/configuration.md, and `squall config defaults`' file.
public enum OptionReference {
    /// The options as `--help` lists them.
    public static var help: String {
        var text = wrapped(
            "Every option is also a SQUALL_* environment variable and a key of the --config file; a flag wins over the environment, which wins over the file, which wins over the default. docs/configuration.md has more.",
            indent: "")
        text += "\n\nOPTIONS:\n"
        for spec in Options.all {
            let flag = spec.arity == .none ? spec.flag : "\(spec.flag) <\(spec.valueName)>"
            var line = "\(spec.summary). [default: \(spec.defaultText)]"
            if let environment = spec.environment { line += " [env: \(environment)\(spec.arity == .list ? ", comma-separated" : "")]" }
            if spec.arity == .list { line += " [repeatable]" }
            if spec.live { line += " [reloads live]" }
            text += "  \(flag)\n\(wrapped(line, indent: "        "))\n"
        }
        return text
    }

    /// `text` in lines of at most 78 columns, each starting with `indent`: ArgumentParser wraps
    /// longer lines of a discussion at 80 and loses the indentation.
    private static func wrapped(_ text: String, indent: String) -> String {
        var lines: [String] = []
        var line = indent
        for word in text.split(separator: " ") {
            if line.count > indent.count, line.count + 1 + word.count > 78 {
                lines.append(line)
                line = indent
            }
            line += (line.count > indent.count ? " " : "") + word
        }
        lines.append(line)
        return lines.joined(separator: "\n")
    }

    /// README.md's table: option, environment variable, default, meaning.
    public static var readmeTable: String {
        var lines = ["| option | environment | default | meaning |", "|---|---|---|---|"]
        for spec in Options.all {
            lines.append("| `\(spec.flag)` | \(spec.environment.map { "`\($0)`" } ?? "—") | \(defaultCell(spec)) | \(escape(spec.summary)) |")
        }
        return lines.joined(separator: "\n")
    }

    /// docs/configuration.md's table: option, environment variable, file key, default, whether
    /// it reloads live, meaning.
    public static var configurationTable: String {
        var lines = ["| option | environment | file key | default | live | meaning |", "|---|---|---|---|---|---|"]
        for spec in Options.all {
            let environment = spec.environment.map { "`\($0)`" } ?? "—"
            let file = spec.fileKey.map { "`\($0)`" } ?? "—"
            lines.append("| `\(spec.flag)` | \(environment) | \(file) | \(defaultCell(spec)) | \(spec.live ? "yes" : "no") | \(escape(spec.summary)) |")
        }
        return lines.joined(separator: "\n")
    }

    /// A complete configuration file of every option at its default, each commented, which
    /// `squall config check --config` accepts unchanged.
    public static var defaultsFile: String {
        var text = """
            # Squall's configuration, every option at its default (squall config defaults).
            # Keys are the flags' names; a flag or a SQUALL_* variable wins over this file.
            # Durations read 30, 30s, 5m, 1h; sizes 65536, 64KiB, 1MiB. Options marked
            # "reloads live" change on SIGHUP (or, with config-watch, when this file changes).

            """
        var auth: [OptionSpec] = []
        for spec in Options.all {
            guard let key = spec.fileKey else { continue }
            if key.hasPrefix("auth.") {
                auth.append(spec)
                continue
            }
            text += entry(spec, key: key, indent: "")
        }
        text += "\n# Connection tokens (JWT).\nauth:\n"
        for spec in auth {
            text += entry(spec, key: String(spec.fileKey?.dropFirst(5) ?? ""), indent: "  ")
        }
        text += """

            # The options of channels outside every namespace (names without ':', or whose
            # namespace is not defined). Each key also fits a namespace below. The bounds left
            # unset follow the server's (retention-*, max-message-size); a value given is held
            # to them.
            \(Options.defaultNamespaceSection):
              # history-size: N          # most messages a channel keeps (default retention-messages)
              # history-age: DURATION    # how long it keeps one (default retention-age)
              # history-bytes: SIZE      # most bytes it keeps (default retention-bytes)
              presence: true             # subscribers listed in presence
              join-leave: true           # presence watchers told of joins and leaves
              subscribe: anyone          # anyone, authenticated, subscribers or none
              publish: anyone
              history: anyone
              presence-read: anyone
              private: false             # subscribing needs a subscription token for the channel
              # max-message-size: SIZE   # (default max-message-size)
              publish-rate: "off"        # per client, on top of publish-rate: N/s, N/min, N/h or off

            # Channel families: channel chat:lobby takes namespace chat's options.
            \(Options.namespacesSection): {}

            """
        return text
    }

    private static func entry(_ spec: OptionSpec, key: String, indent: String) -> String {
        var text = "\(indent)# \(spec.summary).\(spec.live ? " Reloads live." : "")\n"
        let value = defaultValue(spec)
        text += value.map { "\(indent)\(key): \($0)\n" } ?? "\(indent)# \(key): \(spec.valueName)    (none by default)\n"
        return text
    }

    /// A default as YAML; `nil` for none.
    private static func defaultValue(_ spec: OptionSpec) -> String? {
        switch spec.key {
        case "threads", "publish-burst", "subscribe-burst": return nil
        default: break
        }
        if spec.defaultText == "none" { return spec.arity == .list ? "[]" : nil }
        if spec.defaultText == "off" { return "\"off\"" }
        return spec.defaultText.contains(":") || spec.defaultText.contains("/") ? "\"\(spec.defaultText)\"" : spec.defaultText
    }

    private static func defaultCell(_ spec: OptionSpec) -> String {
        ["none", "the CPUs it may run on", "10 s of the rate"].contains(spec.defaultText) ? spec.defaultText : "`\(spec.defaultText)`"
    }

    private static func escape(_ text: String) -> String { text.replacingOccurrences(of: "|", with: "\\|") }

    /// The effective configuration, one line per option: `key = value  (source)`, live ones
    /// marked.
    public static func effective(_ settings: Settings) -> String {
        let width = settings.effective.map(\.key.count).max() ?? 0
        return settings.effective.map { setting in
            let key = setting.key.padding(toLength: width, withPad: " ", startingAt: 0)
            return "\(key)  \(setting.value)    (\(setting.source)\(setting.live ? ", reloads live" : ""))"
        }.joined(separator: "\n")
    }
}
