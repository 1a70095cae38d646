// SPDX-License-Identifier: Apache-2.0

/// What the help text, the docs and every source of settings know of one option: declared once,
/// in ``Options``.
public struct OptionSpec: Sendable, Hashable {
    /// The key, as messages name it: `port`, `jwt-secret`.
    public let key: String
    /// The command-line flag: `--port`.
    public var flag: String { "--\(key)" }
    /// The environment variable: `SQUALL_PORT`; `nil` for an option the environment cannot set.
    public let environment: String?
    /// The configuration file's key, dotted for a section (`auth.jwt-secret`); `nil` for an
    /// option a file cannot set (`config` itself).
    public let fileKey: String?
    /// The default as the docs write it.
    public let defaultText: String
    /// What a value looks like, in the help text: `N`, `DURATION`, `SIZE`.
    public let valueName: String
    /// One line of help.
    public let summary: String
    /// Whether a reload (SIGHUP) changes it in a running server.
    public let live: Bool
    /// How many values it takes.
    public let arity: Arity

    public enum Arity: Sendable, Hashable {
        /// One value; given twice, the last wins.
        case one
        /// Any number: the flag repeats, the environment variable is comma-separated, the file
        /// gives a list.
        case list
        /// None: a switch (`--config-watch`); the environment and the file say `true` or `false`.
        case none
    }
}

/// An option whose values parse into `Value`.
public struct ServeOption<Value: Sendable>: Sendable {
    public let spec: OptionSpec
    /// The value when no source gives one.
    let defaultValue: Value
    /// The value of the texts a source gave, or what they must be.
    let parse: @Sendable ([String]) -> Result<Value, Requirement>

    /// What a value must be, for the error that names the key, the value and its source.
    public struct Requirement: Error, Sendable {
        public let text: String
        public init(_ text: String) { self.text = text }
    }
}
