// SPDX-License-Identifier: Apache-2.0

import SquallCore

/// One value of a namespace's dictionary: a number, a boolean or text, as a configuration file
/// or a Swift literal writes it.
public enum NamespaceValue: Sendable, Equatable, CustomStringConvertible, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByStringLiteral
{
    case integer(Int)
    case boolean(Bool)
    case text(String)

    public init(integerLiteral value: Int) { self = .integer(value) }
    public init(booleanLiteral value: Bool) { self = .boolean(value) }
    public init(stringLiteral value: String) { self = .text(value) }

    /// The value as written.
    public var description: String {
        switch self {
        case .integer(let value): "\(value)"
        case .boolean(let value): "\(value)"
        case .text(let value): value
        }
    }
}

extension NamespaceOptions {
    /// Every key a namespace's dictionary may hold, in the order docs list them.
    public static let keys = [
        "history-size", "history-age", "history-bytes", "presence", "join-leave", "subscribe", "publish", "history", "presence-read", "private",
        "max-message-size", "publish-rate", "hook-subscribe", "hook-publish",
    ]

    /// A key or value a namespace cannot take: the key, the value as given, and what it must be.
    public struct InvalidOption: Error, Sendable, CustomStringConvertible {
        public let key: String
        public let value: String
        public let requirement: String

        public var description: String { "\(key): \"\(value.prefix(200))\" is not \(requirement)" }
    }

    /// A namespace built from a dictionary — the seed's `type(name, bases, dict)` for a channel
    /// family. Keys are the configuration file's (``keys``): `history-size`, `history-age`
    /// (`1h`), `history-bytes` (`1MiB`), `presence`, `join-leave`, `private` (booleans),
    /// `subscribe`, `publish`, `history`, `presence-read` (a ``ChannelAccess``),
    /// `max-message-size` (`64KiB`), `publish-rate` (`10/s`, or `off`) and `hook-subscribe`,
    /// `hook-publish` (an http(s) URL, or `off`). `history` given a
    /// number is the history size, as in `["history": 100, "publish": "subscribers"]`. Keys
    /// absent keep their defaults.
    /// - Throws: ``InvalidOption`` for an unknown key or a value of the wrong kind.
    public init(_ dictionary: [String: NamespaceValue]) throws(InvalidOption) {
        self.init()
        for (key, value) in dictionary.sorted(by: { $0.key < $1.key }) {
            try set(key, value)
        }
    }

    private mutating func set(_ key: String, _ value: NamespaceValue) throws(InvalidOption) {
        switch key {
        case "history-size": historySize = try Self.positive(key, value)
        case "history" where Self.isNumber(value): historySize = try Self.positive(key, value)
        case "history-age":
            guard let age = ValueText.duration(value.description), age > .zero else {
                throw InvalidOption(key: key, value: value.description, requirement: "a duration above 0 (30s, 5m, 1h)")
            }
            historyAge = age
        case "history-bytes": historyBytes = try Self.size(key, value)
        case "max-message-size": maxMessageSize = try Self.size(key, value)
        case "presence": presence = try Self.flag(key, value)
        case "join-leave": joinLeave = try Self.flag(key, value)
        case "private": isPrivate = try Self.flag(key, value)
        case "subscribe": subscribe = try Self.access(key, value)
        case "publish": publish = try Self.access(key, value)
        case "history": history = try Self.access(key, value)
        case "presence-read": presenceRead = try Self.access(key, value)
        case "publish-rate":
            if value == .text("off") {
                publishRate = nil
            } else {
                guard let rate = try? RateLimit(parsing: value.description) else {
                    throw InvalidOption(key: key, value: value.description, requirement: "a rate (N/s, N/min, N/h) or off")
                }
                publishRate = rate
            }
        case "hook-subscribe": subscribeHook = try Self.hook(key, value)
        case "hook-publish": publishHook = try Self.hook(key, value)
        default:
            throw InvalidOption(key: key, value: value.description, requirement: "a namespace option; one of \(Self.keys.joined(separator: ", "))")
        }
    }

    private static func isNumber(_ value: NamespaceValue) -> Bool {
        if case .integer = value { return true }
        if case .text(let text) = value, Int(text) != nil { return true }
        return false
    }

    private static func positive(_ key: String, _ value: NamespaceValue) throws(InvalidOption) -> Int {
        guard let number = Int(value.description), number >= 1 else {
            throw InvalidOption(key: key, value: value.description, requirement: "a whole number of at least 1")
        }
        return number
    }

    private static func size(_ key: String, _ value: NamespaceValue) throws(InvalidOption) -> Int {
        guard let bytes = ValueText.byteCount(value.description), bytes >= 1 else {
            throw InvalidOption(key: key, value: value.description, requirement: "a size of at least 1 byte (65536, 64KiB, 1MiB)")
        }
        return bytes
    }

    private static func flag(_ key: String, _ value: NamespaceValue) throws(InvalidOption) -> Bool {
        guard let flag = ValueText.boolean(value.description) else { throw InvalidOption(key: key, value: value.description, requirement: "true or false") }
        return flag
    }

    private static func hook(_ key: String, _ value: NamespaceValue) throws(InvalidOption) -> NamespaceHook {
        let text = value.description
        if text == "off" { return .off }
        guard HookConfiguration.isURL(text) else { throw InvalidOption(key: key, value: text, requirement: "an http:// or https:// URL, or off") }
        return .url(text)
    }

    private static func access(_ key: String, _ value: NamespaceValue) throws(InvalidOption) -> ChannelAccess {
        guard let access = ChannelAccess(rawValue: value.description) else {
            throw InvalidOption(key: key, value: value.description, requirement: "one of \(ChannelAccess.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return access
    }
}
