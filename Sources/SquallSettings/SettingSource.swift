// SPDX-License-Identifier: Apache-2.0

/// Where an option's value came from, as `squall config check` prints it and errors name it.
public enum SettingSource: Sendable, Hashable, CustomStringConvertible {
    /// The command line: `--port`.
    case flag(String)
    /// An environment variable: `SQUALL_PORT`.
    case environment(String)
    /// The configuration file, at a line when the parser says.
    case file(path: String, line: Int?)
    /// Nothing set it.
    case defaultValue

    public var description: String {
        switch self {
        case .flag(let flag): "flag \(flag)"
        case .environment(let name): "environment \(name)"
        case .file(let path, let line?): "\(path):\(line)"
        case .file(let path, nil): path
        case .defaultValue: "default"
        }
    }
}

/// A value that cannot be used: the key, the value as given, where it came from, and what it
/// must be.
public struct SettingError: Error, Sendable, CustomStringConvertible {
    public let key: String
    public let value: String?
    public let source: SettingSource?
    public let problem: String

    init(key: String, value: String?, source: SettingSource?, problem: String) {
        self.key = key
        self.value = value
        self.source = source
        self.problem = problem
    }

    public var description: String {
        var text = key
        if let value { text += " \"\(value.prefix(200))\"" }
        if let source { text += " (\(source))" }
        return "\(text): \(problem)"
    }
}
