// SPDX-License-Identifier: Apache-2.0

import Configuration
import Foundation
import Logging
import Squall
import SquallCore

/// Everything `squall serve` is configured with, resolved from its four sources — flags, then
/// `SQUALL_*` environment variables, then the configuration file, then the defaults — with the
/// source of every value.
///
/// Contracts: a value that does not parse, a key nobody knows, a value of the wrong kind are
/// each a ``SettingError`` naming the key, the value and its source — never ignored. Loading
/// opens nothing (the store is named, not opened; keys are read when the server starts).
public struct Settings: Sendable {
    /// The server's configuration; `storage` is memory until the program opens ``store``.
    public let configuration: SquallConfiguration
    public let store: StoreOption
    public let sqliteSync: SQLiteSync
    /// Most lifecycle events a store's outbox holds.
    public let webhookOutboxMax: Int
    public let logLevel: Logger.Level
    /// Event-loop threads; `nil` for one per CPU the process may run on.
    public let threads: Int?
    /// The configuration file, if any.
    public let configFile: String?
    /// Whether a change of the file reloads it.
    public let watchesConfig: Bool
    /// Every option's value as text, with its source, in ``Options/all``'s order, then the
    /// namespaces' options.
    public let effective: [EffectiveSetting]

    /// One option's value as `config check` prints it.
    public struct EffectiveSetting: Sendable, Hashable {
        public let key: String
        public let value: String
        public let source: SettingSource
        public let live: Bool
    }

    /// Resolves every option from `arguments` (the options after `squall serve`), `environment`
    /// and the file `--config` / `SQUALL_CONFIG` names.
    public static func load(arguments: [String], environment: [String: String]) async throws(SettingError) -> Settings {
        let flags = try FlagArguments(arguments)
        let provider = EnvironmentVariablesProvider(environmentVariables: environment)
        var resolver = Resolver(sources: SettingsSources(flags: flags, environment: provider, file: nil))
        let configFile = try resolver.value(Options.config)
        if let configFile {
            resolver.sources = SettingsSources(flags: flags, environment: provider, file: try await ConfigFile.load(configFile))
        }
        return try resolver.settings(configFile: configFile)
    }
}

/// Reads each option once, recording what it was and where from.
struct Resolver {
    var sources: SettingsSources
    private(set) var effective: [Settings.EffectiveSetting] = []
    private var sourceOf: [String: SettingSource] = [:]

    init(sources: SettingsSources) {
        self.sources = sources
    }

    mutating func value<Value>(_ option: ServeOption<Value>) throws(SettingError) -> Value {
        let spec = option.spec
        guard let (texts, source) = try sources.texts(spec) else {
            record(spec, spec.defaultText, .defaultValue)
            return option.defaultValue
        }
        switch option.parse(texts) {
        case .success(let value):
            record(spec, texts.isEmpty ? "none" : texts.joined(separator: ", "), source)
            return value
        case .failure(let requirement):
            throw SettingError(key: spec.key, value: Self.shown(spec, texts.joined(separator: ", ")), source: source, problem: "is not \(requirement.text)")
        }
    }

    /// Where `option`'s value came from, once read.
    func source(of spec: OptionSpec) -> SettingSource { sourceOf[spec.key] ?? .defaultValue }

    private mutating func record(_ spec: OptionSpec, _ text: String, _ source: SettingSource) {
        sourceOf[spec.key] = source
        if spec.key == Options.config.spec.key { return }
        effective.append(Settings.EffectiveSetting(key: spec.key, value: Self.shown(spec, text), source: source, live: spec.live))
    }

    /// A namespace option the file sets, as `config check` prints it; namespaces change live.
    mutating func recordFileValue(_ key: String, _ text: String, _ source: SettingSource) {
        effective.append(Settings.EffectiveSetting(key: key, value: text, source: source, live: true))
    }

    /// A value as it may be printed: secrets hidden, a database URL without its password.
    static func shown(_ spec: OptionSpec, _ text: String) -> String {
        switch spec.key {
        case Options.jwtSecret.spec.key, Options.apiKey.spec.key, Options.webhookSecret.spec.key: return text == spec.defaultText ? text : "<secret>"
        case Options.store.spec.key:
            guard let at = text.firstIndex(of: "@"), let scheme = text.range(of: "://"), let colon = text[scheme.upperBound..<at].firstIndex(of: ":") else {
                return text
            }
            return String(text[..<colon]) + ":<secret>" + String(text[at...])
        default: return text
        }
    }

    mutating func settings(configFile: String?) throws(SettingError) -> Settings {
        let watches = try value(Options.configWatch)
        if watches, configFile == nil {
            throw SettingError(
                key: "config-watch", value: "true", source: source(of: Options.configWatch.spec), problem: "needs a configuration file (--config)")
        }
        let logLevel = try value(Options.logLevel)
        let threads = try value(Options.threads)
        let configuration = try configuration()
        let store = try value(Options.store)
        let sqliteSync = try value(Options.sqliteSync)
        let webhookOutboxMax = try value(Options.webhookOutboxMax)
        let (defaultNamespace, namespaces) = try namespaces()
        var withNamespaces = configuration
        withNamespaces.defaultNamespace = defaultNamespace
        withNamespaces.namespaces = namespaces
        // In the table's order, then the namespaces' options in the file's.
        let order = Dictionary(Options.all.enumerated().map { ($1.key, $0) }, uniquingKeysWith: { first, _ in first })
        let sorted = effective.enumerated().sorted {
            (order[$0.element.key] ?? Options.all.count + $0.offset, $0.offset) < (order[$1.element.key] ?? Options.all.count + $1.offset, $1.offset)
        }
        return Settings(
            configuration: withNamespaces, store: store, sqliteSync: sqliteSync, webhookOutboxMax: webhookOutboxMax, logLevel: logLevel, threads: threads,
            configFile: configFile,
            watchesConfig: watches, effective: sorted.map(\.element))
    }
}

extension Settings {
    /// Loads the token keys the settings name, as the server will when it starts: a key that
    /// cannot be read or used is an error here.
    public func loadKeys() async throws(TokenKeys.LoadError) {
        _ = try await TokenKeys.load(configuration.auth)
    }
}
